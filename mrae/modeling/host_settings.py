"""What a host builder is given besides the backbone: one frozen record of the detector's settings.

Its defaults are the one place the host's defaults are written: the config's ``model`` section
(:class:`mrae.engine.config_schema.ModelConfig`) takes them from here. The module imports neither
torch nor the hosts, so loading a config stays torch-free; import the record as
``from mrae.modeling.hosts import HostSettings``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostSettings:
    """The settings of :func:`mrae.modeling.detector.build_detector` that a host reads (checked
    there); each host reads those it needs (``mrae.choices.DETECTOR_SETTINGS`` says which)."""

    num_classes: int
    extractor_name: str  # for messages: the extractor's name, or its class name
    min_size: int = 300
    max_size: int = 512
    fixed_size: tuple[int, int] | None = None  # (height, width)
    head: str = "mlp"
    anchor_sizes: tuple[float, ...] = (8.0, 16.0, 32.0, 64.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    fpn_anchors: str = "per_level"
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_class: int = 100
    detections_per_img: int = 300
    ignore_iof_thr: float | None = 0.5
    box_coding: str = "relu"  # FCOS only: mrae.choices.FCOS_BOX_CODINGS
    head_norm: str = "none"  # RetinaNet only: mrae.choices.RETINANET_HEAD_NORMS
    box_similarity: str = "iou"  # label assignment's measure: mrae.choices.BOX_SIMILARITIES (not FCOS)
    nwd_constant: float = 12.8  # NWD's C in px (mrae.modeling.box_similarity.NWD_CONSTANT)
    head_init: str = "normal"  # RetinaNet only: mrae.choices.RETINANET_HEAD_INITS
