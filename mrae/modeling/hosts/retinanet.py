"""RetinaNet around the extractor: torchvision's, with ignore regions in its loss and the caps."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import box_iou

from mrae.choices import RETINANET_HEAD_INITS, RETINANET_HEAD_NORMS
from mrae.errors import ConfigError
from mrae.modeling.box_similarity import BoxSimilarity, box_similarity
from mrae.modeling.caps import UNCUT, DetectionCaps
from mrae.modeling.extractor_backbone import ExtractorBackbone
from mrae.modeling.host_settings import RetinaNetSettings
from mrae.modeling.hosts.anchors import anchors_and_roi_maps
from mrae.modeling.hosts.norms import group_norm
from mrae.modeling.hosts.one_stage import CappedOneStage
from mrae.modeling.ignore import mark_ignored
from mrae.modeling.transform import build_transform

# torchvision's Matcher.BETWEEN_THRESHOLDS: RetinaNet's losses leave these anchors out.
NEITHER = -2


class IgnoringRetinaNetHead(RetinaNetHead):
    """torchvision's RetinaNet head whose unmatched anchors inside a target's ``"ignore_boxes"``
    (IoF > ``ignore_iof_thr``) are neither positives nor negatives, as its anchors between the
    IoU thresholds are.

    ``head_norm`` (:data:`mrae.choices.RETINANET_HEAD_NORMS`): ``"none"``, torchvision's v1 head
    (convs with bias, no norm); ``"group"``, GroupNorm after each of the 4 + 4 tower convs
    (torchvision's RetinaNet v2 head, the convs without bias).

    ``head_init`` (:data:`mrae.choices.RETINANET_HEAD_INITS`): the tower convs' weights,
    ``"normal"``, torchvision's N(0, 0.01), or ``"kaiming"``, He's normal init (fan-in, for
    ReLU). With N(0, 0.01) and no norm each 256-channel conv passes about a third of its input's
    RMS, so the logits barely depend on the image at the start (docs/retinanet_probe.md). The
    output convs (class logits with the 0.01 prior, box deltas) keep torchvision's init either
    way, and the state dict's keys are torchvision's either way."""

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int,
                 ignore_iof_thr: float | None, head_norm: str = "none", head_init: str = "normal") -> None:
        for key, value, choices in (("head_norm", head_norm, RETINANET_HEAD_NORMS),
                                    ("head_init", head_init, RETINANET_HEAD_INITS)):
            if value not in choices:
                shown = ", ".join(repr(c) for c in choices)
                raise ConfigError(f"model.retinanet.{key}={value!r} is not valid; choose one of: {shown}")
        super().__init__(in_channels, num_anchors, num_classes,
                         norm_layer=group_norm if head_norm == "group" else None)
        if head_init == "kaiming":
            for tower in (self.classification_head.conv, self.regression_head.conv):
                for layer in tower.modules():
                    if isinstance(layer, nn.Conv2d):
                        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        self.head_norm = head_norm
        self.head_init = head_init
        self.ignore_iof_thr = ignore_iof_thr

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        marked = [
            mark_ignored(matched, anchors_in_image, target.get("ignore_boxes"), self.ignore_iof_thr, NEITHER)
            for matched, anchors_in_image, target in zip(matched_idxs, anchors, targets, strict=True)
        ]
        return super().compute_loss(targets, head_outputs, anchors, marked)


class MraeRetinaNet(CappedOneStage, RetinaNet):
    """torchvision's RetinaNet with the caps of :class:`CappedOneStage`, its anchors matched to
    the targets by ``box_similarity`` (:mod:`mrae.modeling.box_similarity`; torchvision's calls
    ``box_iou`` directly) with its Matcher's thresholds (0.5 and 0.4) on that measure's scale."""

    box_similarity: BoxSimilarity = staticmethod(box_iou)  # the builder sets the chosen one

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor]) -> dict[str, Tensor]:
        """torchvision's: each image's anchors [A, 4] matched to its targets (index >= 0, or
        torchvision's Matcher's -1 below and -2 between the thresholds), then the head's losses;
        the match quality from ``self.box_similarity``. With IoU: torchvision's, bit for bit."""
        matched_idxs = []
        for anchors_per_image, targets_per_image in zip(anchors, targets, strict=True):
            if targets_per_image["boxes"].numel() == 0:
                matched_idxs.append(torch.full((anchors_per_image.size(0),), -1, dtype=torch.int64,
                                               device=anchors_per_image.device))
                continue
            quality = self.box_similarity(targets_per_image["boxes"], anchors_per_image)
            matched_idxs.append(self.proposal_matcher(quality))
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)


def build_retinanet(backbone: ExtractorBackbone, s: RetinaNetSettings) -> MraeRetinaNet:
    """RetinaNet on ``backbone``: the anchors of ``s`` on its maps (as Faster R-CNN's RPN has
    them), torchvision's head (4 convs per branch, with GroupNorm or none, ``s.head_norm``, drawn
    by ``s.head_init``; focal loss) with ignore regions, anchors matched by ``s.box_similarity``,
    the caps."""
    anchors, _ = anchors_and_roi_maps(backbone.name, backbone.output_shape(), s.anchor_sizes,
                                      s.aspect_ratios, s.fpn_anchors)
    head = IgnoringRetinaNetHead(backbone.out_channels, anchors.num_anchors_per_location()[0],
                                 s.num_classes, s.ignore_iof_thr, s.head_norm,
                                 s.head_init)
    model = MraeRetinaNet(
        backbone, s.num_classes, min_size=s.min_size, max_size=s.max_size, anchor_generator=anchors,
        head=head, score_thresh=s.box_score_thresh, nms_thresh=s.box_nms_thresh,
        detections_per_img=UNCUT,
    )
    model.transform = build_transform(s.min_size, s.max_size, s.fixed_size)
    model.box_similarity = box_similarity(s.box_similarity, s.nwd_constant)
    model.caps = DetectionCaps(s.detections_per_img, s.detections_per_class)
    model.num_classes = s.num_classes
    return model
