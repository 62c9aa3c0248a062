"""FCOS around the extractor: torchvision's, one point per map position, with ignore regions in
its classification loss and the caps."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection._utils import BoxLinearCoder
from torchvision.models.detection.fcos import FCOSClassificationHead, FCOSHead
from torchvision.ops import sigmoid_focal_loss

from mrae.modeling.caps import UNCUT, DetectionCaps
from mrae.modeling.extractor_backbone import ExtractorBackbone
from mrae.modeling.host_settings import FCOSSettings
from mrae.modeling.hosts.anchors import points
from mrae.modeling.hosts.fcos_box_coding import CodedFCOSRegressionHead
from mrae.modeling.hosts.norms import group_norm
from mrae.modeling.hosts.one_stage import CappedOneStage
from mrae.modeling.ignore import inside_ignore
from mrae.modeling.transform import build_transform


class IgnoringFCOSHead(FCOSHead):
    """torchvision's FCOS head whose classification loss leaves out the unmatched points whose
    cell (a stride-sized square around the point) lies inside a target's ``"ignore_boxes"``
    (IoF > ``ignore_iof_thr``); the box and centre-ness losses read positives only, unchanged.
    Without ignored points the losses are torchvision's, bit for bit. The box outputs are made
    positive by ``box_coding`` over ``num_levels`` maps
    (:class:`~mrae.modeling.hosts.fcos_box_coding.CodedFCOSRegressionHead`; ``"relu"``:
    torchvision's head)."""

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int,
                 ignore_iof_thr: float | None, num_levels: int = 1, box_coding: str = "relu") -> None:
        # FCOSHead's own parts, with GroupNorm in as many groups as divide the width
        nn.Module.__init__(self)
        self.box_coder = BoxLinearCoder(normalize_by_size=True)
        self.classification_head = FCOSClassificationHead(in_channels, num_anchors, num_classes,
                                                          norm_layer=group_norm)
        self.regression_head = CodedFCOSRegressionHead(in_channels, num_anchors, num_levels, box_coding,
                                                       norm_layer=group_norm)
        self.ignore_iof_thr = ignore_iof_thr

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)
        ignored = []
        for matched, cells, target in zip(matched_idxs, anchors, targets, strict=True):
            inside = inside_ignore(cells, target.get("ignore_boxes"), self.ignore_iof_thr)
            ignored.append(torch.zeros_like(matched, dtype=torch.bool) if inside is None
                           else inside & (matched < 0))
        if not any(bool(mask.any()) for mask in ignored):
            return losses
        # the classification loss again, over the points that are not ignored
        cls_logits = head_outputs["cls_logits"]  # [N, HWA, C]
        wanted = torch.zeros_like(cls_logits)
        for i, (matched, target) in enumerate(zip(matched_idxs, targets, strict=True)):
            positive = matched >= 0
            wanted[i, positive, target["labels"][matched[positive]]] = 1.0
        kept = ~torch.stack(ignored)
        num_foreground = int(sum(int((m >= 0).sum()) for m in matched_idxs))
        loss = sigmoid_focal_loss(cls_logits[kept], wanted[kept], reduction="sum")
        losses["classification"] = loss / max(1, num_foreground)
        return losses


class MraeFCOS(CappedOneStage, FCOS):
    """torchvision's FCOS with the caps of :class:`CappedOneStage`."""


def build_fcos(backbone: ExtractorBackbone, s: FCOSSettings) -> MraeFCOS:
    """FCOS on ``backbone``: one point per position of each map (its cell the map's stride),
    torchvision's head (4 convs per branch; focal, GIoU and centre-ness losses) with ignore
    regions and the box coding ``s.box_coding``, the caps."""
    shapes = backbone.output_shape()
    head = IgnoringFCOSHead(backbone.out_channels, 1, s.num_classes, s.ignore_iof_thr,
                            num_levels=len(shapes), box_coding=s.box_coding)
    model = MraeFCOS(
        backbone, s.num_classes, min_size=s.min_size, max_size=s.max_size,
        anchor_generator=points(shapes), head=head, score_thresh=s.box_score_thresh,
        nms_thresh=s.box_nms_thresh, detections_per_img=UNCUT,
    )
    model.transform = build_transform(s.min_size, s.max_size, s.fixed_size)
    model.caps = DetectionCaps(s.detections_per_img, s.detections_per_class)
    model.num_classes = s.num_classes
    return model
