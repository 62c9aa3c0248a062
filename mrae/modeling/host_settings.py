"""Each host's settings, declared once (:mod:`mrae.modeling.settings`); the hosts are registered
with theirs in :mod:`mrae.modeling.registry`.

The keys of :class:`HostSettings` are every host's and live flat in the config's ``model``
section; the keys a host's own class adds live in its sub-section (``model.faster_rcnn``,
``model.retinanet``, ``model.fcos``), which only that host reads, so that switching
``model.detector`` is one override on any config. A host builder is given one instance of its
class, common keys and its own together. Torch-free, so that configs load without torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mrae.choices import (
    BOX_SIMILARITIES,
    FCOS_BOX_CODINGS,
    FPN_ANCHOR_CHOICES,
    HEADS,
    RETINANET_HEAD_INITS,
    RETINANET_HEAD_NORMS,
)
from mrae.modeling.settings import Rule, at_least, between, is_number, positives, setting

#: Anchors larger than this many times the longer side of the model's input are refused: such an
#: anchor overlaps any box of the image by an IoU under 1 / ANCHOR_BOUND**2 (1/16).
ANCHOR_BOUND = 4


def _iof(value: object) -> bool:
    return is_number(value) and value <= 1  # type: ignore[operator]


@dataclass(frozen=True)
class HostSettings:
    """What every host reads: the classes, the resize, the caps after NMS and ignore regions."""

    num_classes: int | None = setting(
        None, "object classes + 1 (the background), torchvision's convention; null in a config: "
        "the training data's classes + 1", rule=at_least(2), nullable=True)
    min_size: int = setting(300, "resize: pixels of the shorter side (300/512: the paper's 512x300)",
                            rule=at_least(1))
    max_size: int = setting(512, "resize: at most this many pixels on the longer side",
                            rule=at_least(1))
    fixed_size: tuple[int, int] | None = setting(
        None, "[height, width] every image is resized to instead of min_size/max_size, or null",
        rule=Rule(lambda v: isinstance(v, list | tuple) and len(v) == 2
                  and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v),
                  "[height, width], integers >= 1"), nullable=True)
    box_score_thresh: float = setting(0.05, "detections scored below this are dropped",
                                      rule=between(0, 1, what="a score"))
    box_nms_thresh: float = setting(0.5, "NMS IoU of the detections, per class",
                                    rule=between(0, 1, what="an IoU", open_low=True))
    detections_per_class: int = setting(100, "cap after NMS: detections per class and image",
                                        rule=at_least(1))
    detections_per_img: int = setting(300, "cap after NMS: detections per image", rule=at_least(1))
    ignore_iof_thr: float | None = setting(
        0.5, "training: anchors or points (not positives) whose intersection over their own area "
        "with a crowd or ignore region exceeds this are neither positives nor negatives; null or "
        "< 0: off", rule=Rule(_iof, "an IoF in [0, 1] (null or negative: off)"), nullable=True)

    def input_side(self) -> int:
        """The longer side of the model's input, in pixels (``fixed_size`` or ``max_size``)."""
        return max(self.fixed_size) if self.fixed_size is not None else self.max_size

    def problems(self) -> Iterator[tuple[str, str]]:
        """``(key, why)`` for each value that does not go with the others (none here); a subclass
        adds its own after ``super().problems()``."""
        return iter(())


@dataclass(frozen=True)
class AnchoredSettings(HostSettings):
    """Hosts that put anchors on the extractor's maps (Faster R-CNN's RPN, RetinaNet)."""

    anchor_sizes: tuple[float, ...] = setting(
        (8.0, 16.0, 32.0, 64.0), "anchor sizes, pixels of the resized input (one map: every "
        "size x ratio on it; several maps: see fpn_anchors)", rule=positives(what="finite sizes > 0"))
    aspect_ratios: tuple[float, ...] = setting((0.5, 1.0, 2.0), "anchor ratios h/w",
                                               rule=positives(what="finite ratios > 0"))
    fpn_anchors: str = setting(
        "per_level", "extractors with several maps (fpn): per_level (torchvision's one size per "
        "map, the smallest on the finest) or all (every size x ratio on every map); one map: the "
        "same anchors either way", choices=FPN_ANCHOR_CHOICES)
    box_similarity: str = setting(
        "iou", "what label assignment matches boxes by: iou (torchvision's) or nwd (the Normalized "
        "Gaussian Wasserstein Distance, for tiny objects; docs/nwd.md)", choices=BOX_SIMILARITIES)
    nwd_constant: float = setting(12.8, "NWD's constant C in px (box_similarity nwd only)",
                                  rule=Rule(lambda v: is_number(v) and v > 0, "a number > 0"))

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        bound = ANCHOR_BOUND * self.input_side()
        if max(self.anchor_sizes) > bound:
            side = f"fixed_size={list(self.fixed_size)}" if self.fixed_size is not None \
                else f"max_size={self.max_size}"
            yield ("anchor_sizes", f"give sizes of at most {bound} px, {ANCHOR_BOUND}x the input's "
                                   f"longer side (model.{side})")


@dataclass(frozen=True)
class FasterRCNNSettings(AnchoredSettings):
    """``faster_rcnn`` (``model.faster_rcnn``): the box head, torchvision's RPN and RoI counts."""

    head: str = setting("mlp", "box head: mlp (torchvision's two-layer head on 7x7 RoIAlign) or "
                        "c4 (conv5_x on 14x14 RoIAlign, the paper's)", choices=HEADS)
    rpn_pre_nms_top_n_train: int = setting(2000, "RPN: proposals per map kept before NMS (training)",
                                           rule=at_least(1))
    rpn_pre_nms_top_n_test: int = setting(1000, "RPN: proposals per map kept before NMS (testing)",
                                          rule=at_least(1))
    rpn_post_nms_top_n_train: int = setting(2000, "RPN: proposals kept after NMS (training)",
                                            rule=at_least(1))
    rpn_post_nms_top_n_test: int = setting(1000, "RPN: proposals kept after NMS (testing)",
                                           rule=at_least(1))
    rpn_nms_thresh: float = setting(0.7, "RPN: NMS IoU", rule=between(0, 1, what="an IoU", open_low=True))
    rpn_batch_size_per_image: int = setting(256, "RPN: anchors sampled per image for its loss",
                                            rule=at_least(1))
    box_batch_size_per_image: int = setting(512, "RoI heads: proposals sampled per image for their "
                                            "loss", rule=at_least(1))


@dataclass(frozen=True)
class RetinaNetSettings(AnchoredSettings):
    """``retinanet`` (``model.retinanet``): torchvision's RetinaNet head on the anchors."""

    head_norm: str = setting("none", "GroupNorm after each conv of the head towers (group, "
                             "RetinaNet v2's) or none (torchvision's v1 head)", choices=RETINANET_HEAD_NORMS)
    head_init: str = setting("normal", "the head towers' conv init: normal (torchvision's "
                             "N(0, 0.01)) or kaiming (He's, for ReLU)", choices=RETINANET_HEAD_INITS)


@dataclass(frozen=True)
class FCOSSettings(HostSettings):
    """``fcos`` (``model.fcos``): one point per map position, no anchors."""

    box_coding: str = setting("relu", "how the box distances are made positive: relu "
                              "(torchvision's; it has a dead zone) or exp (exp(s x), a learnable s "
                              "per map, the FCOS paper's)", choices=FCOS_BOX_CODINGS)
