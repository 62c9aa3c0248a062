"""Build a detector that hosts an extractor: ResNet levels -> extractor -> a host (``model.detector``:
Faster R-CNN, the paper's, RetinaNet or FCOS).

    model = build_detector(extractor="mrae", template=2, backbone="resnet50", head="c4")
    model.backbone.body        # ResNetLevels: C1..C3
    model.backbone.extractor   # the extractor (EXTRACTORS[extractor], or the module given)
    model.roi_heads.box_head   # Faster R-CNN: TwoMLPHead ("mlp") or ResNetC4Head ("c4", holds conv5_x)
    model.head                 # RetinaNet, FCOS: torchvision's heads with ignore regions

The backbone alone (for torchvision's own detector classes): :func:`mrae.modeling.extractor_backbone.build_backbone`.
The hosts: :data:`mrae.modeling.hosts.HOSTS`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor, nn

from mrae.choices import DETECTOR_NAMES, FPN_ANCHOR_CHOICES, HEADS, LEVEL_CHOICES, out_of_scope
from mrae.errors import ConfigError
from mrae.modeling.backbone import RESNET_DEPTHS
from mrae.modeling.box_similarity import check_assignment
from mrae.modeling.extractor_backbone import ExtractorSpec, build_levels_and_extractor
from mrae.modeling.extractors import EXTRACTORS
from mrae.modeling.extractors._common import UPSAMPLE_MODES
from mrae.modeling.extractors.mrae import MRAE_MODES
from mrae.modeling.hosts import HOSTS, HostSettings
from mrae.modeling.hosts.fcos_box_coding import check_box_coding
from mrae.modeling.ignore import check_iof_thr

__all__ = ["attention_weights", "build_detector"]


def _choice(name: str, value: object, choices: Sequence[object]) -> None:
    if isinstance(value, bool) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"model.{name}={value!r} is not valid; choose one of: {valid}")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model.{name}={value!r} is not valid; give an integer >= {minimum}")
    return value


def _positive_numbers(name: str, values: object, kind: type) -> tuple:
    try:
        out = tuple(kind(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        out = ()
    if not out or any(v <= 0 for v in out):
        raise ConfigError(f"model.{name}={values!r} is not valid; give a list of positive numbers")
    return out


def build_detector(
    *,
    detector: str = "faster_rcnn",
    extractor: ExtractorSpec = "mrae",
    level: int = 1,
    template: int = 2,
    mode: str = "global",
    backbone: str = "resnet18",
    pretrained: str | Path | None = None,
    trainable_layers: int | None = None,
    norm: str = "auto",
    weights_later: bool = False,
    head: str = "mlp",
    out_channels: int = 256,
    num_classes: int = 2,
    anchor_sizes: Sequence[float] = (8, 16, 32, 64),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    min_size: int = 300,
    max_size: int = 512,
    fixed_size: Sequence[int] | None = None,
    upsample: str = "bilinear",
    learn_temperature: bool = False,
    embed_channels: int = 64,
    pool_size: int = 4,
    embed_dim: int = 256,
    fpn_anchors: str = "per_level",
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_nms_thresh: float = 0.7,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    detections_per_class: int = 100,
    detections_per_img: int = 300,
    ignore_iof_thr: float | None = 0.5,
    box_coding: str = "relu",
    head_norm: str = "none",
    box_similarity: str = "iou",
    nwd_constant: float = 12.8,
    head_init: str = "normal",
) -> nn.Module:
    """A torchvision detector (``detector``) whose backbone is ResNet levels + the chosen extractor.

    Args:
        detector: the host: "faster_rcnn" (the paper's), "retinanet" or "fcos"
            (:data:`mrae.modeling.hosts.HOSTS`). RetinaNet puts the anchors below on the
            extractor's maps; FCOS one point per map position (it reads no anchor settings).
        extractor: one of EXTRACTORS: "single", "soft", "mrae", "concat", "sum", "fpn"; or (Python
            API) an ``nn.Module`` taking the levels ``{"c1", "c2", "c3"}`` with ``output_shape()``,
            or a function from the levels' widths to one.
        level: the level of "single" (1: C1 stride 4, 2: C2 stride 8, 3: C3 stride 16).
        template: the template level of "mrae" (1, 2 or 3).
        mode: "mrae" attention: "global" (per image, the paper) or "spatial" (per position).
        backbone: "resnet18", "resnet34", "resnet50" or "resnet101".
        pretrained: None, "imagenet" (torchvision weights, downloads) or a local state-dict path.
        trainable_layers: ResNet stages that train, 0..5, counted from conv5_x (torchvision's rule);
            None: 3 with trained weights, 5 from scratch.
        norm: "auto" (frozen batch norm with trained weights, batch norm from scratch) or
            "groupnorm" (from scratch only).
        weights_later: the weights come afterwards from a checkpoint of a model built with this
            ``pretrained``: build its structure (frozen batch norm, trainable layers) without
            reading or downloading ``pretrained``.
        head: "mlp" (torchvision's TwoMLPHead on 7x7 RoIAlign) or "c4" (conv5_x on 14x14 RoIAlign).
        out_channels: width of the extractor's output (ignored by "single": the level's width).
        num_classes: object classes + 1 (background), torchvision's convention.
        anchor_sizes, aspect_ratios: anchors (pixels of the resized input; ratio = h/w). An
            extractor with one map gets every size x ratio on it (12 anchors per position); one
            with several maps ("fpn") gets one size per map by default, so it needs exactly as
            many sizes as maps, 4 for "fpn" (see ``fpn_anchors``).
        min_size, max_size: resize keeping the aspect ratio (300/512 = the paper's 512x300).
        fixed_size: (height, width) to resize every image to instead, or None.
        upsample: "bilinear" or "nearest", how the extractors bring C2/C3 to C1's grid.
        learn_temperature: "mrae" only: learn a scale on the cosine similarities.
        embed_channels, pool_size, embed_dim: "mrae" only: the width of the 1x1-conv embedding of
            each level, the P x P grid it is average-pooled to and the length of the vectors
            compared (the last two in global mode only); see :class:`~mrae.modeling.extractors.MRAE`.
        fpn_anchors: extractors with several maps ("fpn") only: "per_level" (torchvision's: size k
            on map k, the smallest on the finest map) or "all" (every size x ratio on every map,
            as the single-map extractors have).
        rpn_*, box_*: torchvision's FasterRCNN settings of the same names
            (box_batch_size_per_image: sampled RoIs per image in training); the one-stage hosts
            read box_score_thresh and box_nms_thresh as their score_thresh and nms_thresh.
        detections_per_class, detections_per_img: caps after NMS (the paper: 100 and 300).
        ignore_iof_thr: in training, anchors and proposals that are not positives and whose
            intersection over their own area (IoF) with a target's ``"ignore_boxes"`` exceeds this
            are neither positives nor negatives (:mod:`mrae.modeling.ignore`); None or < 0: off.
        box_coding: FCOS only: how its box distances are made positive, "relu" (torchvision's;
            it has a dead zone) or "exp" (exp(s x), a learnable s per map, the FCOS paper's)
            (:mod:`mrae.modeling.hosts.fcos_box_coding`). Not yet a config key.
        head_norm: RetinaNet only: "none" (torchvision's v1 head) or "group" (GroupNorm after
            each conv of its head towers, as torchvision's RetinaNet v2). Not yet a config key.
        box_similarity: what label assignment matches boxes to targets by (Faster R-CNN's RPN and
            RoI heads, RetinaNet's anchors; in sliced training too): "iou" (torchvision's) or
            "nwd" (the Normalized Gaussian Wasserstein Distance, for tiny objects; not FCOS, which
            assigns by centre sampling), the thresholds unchanged on its scale
            (:mod:`mrae.modeling.box_similarity`, docs/nwd.md).
        nwd_constant: NWD's constant C in px (> 0; the authors' 12.8), "nwd" only.
        head_init: RetinaNet only: its head towers' conv init, "normal" (torchvision's N(0, 0.01))
            or "kaiming" (He's, for ReLU). Not yet a config key.

    A setting that the extractor or the host does not read (``mrae.choices.EXTRACTOR_SETTINGS``,
    ``DETECTOR_SETTINGS``) must keep its default.

    Raises:
        ConfigError (a ValueError) naming the setting and its valid choices, or the setting that
        does not apply.
    """
    given = dict(locals())
    _choice("detector", detector, DETECTOR_NAMES)
    named = isinstance(extractor, str)
    if named:
        _choice("extractor", extractor, tuple(EXTRACTORS))
    elif not (isinstance(extractor, nn.Module) or callable(extractor)):
        raise ConfigError(f"model.extractor={extractor!r} is not valid; give a name of "
                          f"{', '.join(EXTRACTORS)}, or (Python API) an nn.Module")
    _choice("level", level, LEVEL_CHOICES)
    _choice("template", template, LEVEL_CHOICES)
    _choice("mode", mode, MRAE_MODES)
    _choice("backbone", backbone, tuple(RESNET_DEPTHS))
    _choice("head", head, HEADS)
    _choice("upsample", upsample, UPSAMPLE_MODES)
    _choice("fpn_anchors", fpn_anchors, FPN_ANCHOR_CHOICES)
    _positive_int("out_channels", out_channels)
    _positive_int("num_classes", num_classes, minimum=2)
    for name, value in [
        ("min_size", min_size),
        ("max_size", max_size),
        ("rpn_pre_nms_top_n_train", rpn_pre_nms_top_n_train),
        ("rpn_pre_nms_top_n_test", rpn_pre_nms_top_n_test),
        ("rpn_post_nms_top_n_train", rpn_post_nms_top_n_train),
        ("rpn_post_nms_top_n_test", rpn_post_nms_top_n_test),
        ("rpn_batch_size_per_image", rpn_batch_size_per_image),
        ("box_batch_size_per_image", box_batch_size_per_image),
        ("detections_per_class", detections_per_class),
        ("detections_per_img", detections_per_img),
        ("embed_channels", embed_channels),
        ("pool_size", pool_size),
        ("embed_dim", embed_dim),
    ]:
        _positive_int(name, value)
    defaults = {k: p.default for k, p in inspect.signature(build_detector).parameters.items()}
    problem = out_of_scope(given, defaults, extractor if named else None, detector)
    if problem is not None:
        raise ConfigError(problem)
    iof_thr = check_iof_thr(ignore_iof_thr)
    check_assignment(detector, box_similarity, nwd_constant)
    sizes = _positive_numbers("anchor_sizes", anchor_sizes, float)
    ratios = _positive_numbers("aspect_ratios", aspect_ratios, float)
    hw = None
    if fixed_size is not None:
        hw = _positive_numbers("fixed_size", fixed_size, int)
        if len(hw) != 2:
            raise ConfigError(f"model.fixed_size={fixed_size!r} is not valid; give [height, width]")

    backbone_module, layer4 = build_levels_and_extractor(
        extractor, backbone=backbone, pretrained=pretrained, trainable_layers=trainable_layers,
        norm=norm, weights_later=weights_later, level=level, template=template, mode=mode,
        out_channels=out_channels, upsample=upsample, learn_temperature=learn_temperature,
        embed_channels=embed_channels, pool_size=pool_size, embed_dim=embed_dim,
    )
    settings = HostSettings(
        num_classes=num_classes,
        extractor_name=extractor if named else type(backbone_module.extractor).__name__,
        min_size=min_size, max_size=max_size, fixed_size=hw, head=head, anchor_sizes=sizes,
        aspect_ratios=ratios, fpn_anchors=fpn_anchors,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test, rpn_nms_thresh=rpn_nms_thresh,
        rpn_batch_size_per_image=rpn_batch_size_per_image,
        box_batch_size_per_image=box_batch_size_per_image, score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh, detections_per_class=detections_per_class,
        detections_per_img=detections_per_img, ignore_iof_thr=iof_thr,
        box_coding=check_box_coding(box_coding), head_norm=head_norm,
        box_similarity=box_similarity, nwd_constant=float(nwd_constant),
        head_init=head_init,
    )
    return HOSTS[detector](backbone_module, layer4, settings)


def attention_weights(model: nn.Module) -> Tensor | None:
    """The attention of the detector's last forward pass, or None (no attention / no forward yet).

    Returns [N, 3] per-image level weights ("soft", "mrae" global) or [N, 3, H1, W1]
    ("mrae" spatial, on C1's grid of the resized, padded batch).
    """
    extractor = getattr(getattr(model, "backbone", None), "extractor", None)
    return getattr(extractor, "attention", None)
