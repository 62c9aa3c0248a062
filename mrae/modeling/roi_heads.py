"""RoI heads with a per-class detection cap (torchvision caps only the detections per image),
ignore regions in training (:mod:`mrae.modeling.ignore`) and proposals matched to targets by a
chosen similarity (:mod:`mrae.modeling.box_similarity`)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from mrae.modeling.box_similarity import BoxSimilarity
from mrae.modeling.caps import UNCUT, DetectionCaps, cap_detections
from mrae.modeling.ignore import inside_ignore

__all__ = ["CappedRoIHeads", "cap_detections"]


class CappedRoIHeads(RoIHeads):
    """torchvision's RoIHeads whose post-processing keeps, after torchvision's own (per-class NMS),
    at most ``caps.per_class`` detections of each class and ``caps.per_image`` in all
    (:class:`~mrae.modeling.caps.DetectionCaps`; the paper: 100 per class, 300 per image).
    ``detections_per_img`` is not a keyword: torchvision's cut is :data:`~mrae.modeling.caps.UNCUT`.

    In training, a proposal that is not a positive and whose IoF with one of its image's
    ``"ignore_boxes"`` (target key, [M, 4] xyxy) exceeds ``ignore_iof_thr`` gets label -1, so the
    sampler draws it neither as a positive nor as a negative (None: no ignore regions). The ignore
    boxes go from :meth:`select_training_samples` to :meth:`assign_targets_to_proposals` as an
    argument; the torchvision methods this relies on are in :mod:`mrae.modeling.torchvision_private`.
    """

    def __init__(
        self, *args, caps: DetectionCaps, ignore_iof_thr: float | None = None,
        box_similarity: BoxSimilarity = box_ops.box_iou, **kwargs
    ) -> None:
        super().__init__(*args, detections_per_img=UNCUT, **kwargs)
        self.caps = caps
        self.ignore_iof_thr = ignore_iof_thr
        self.box_similarity = box_similarity  # torchvision sets it (to box_iou) but matches by box_iou

    def select_training_samples(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]] | None
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """torchvision's (the ground truth added to the proposals, their matches and labels, the
        sampled ones and their regression targets), with the targets' ``"ignore_boxes"`` passed to
        :meth:`assign_targets_to_proposals`."""
        self.check_targets(targets)
        if targets is None:
            raise ValueError("targets should not be None")
        dtype, device = proposals[0].dtype, proposals[0].device
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        ignore_boxes = [t.get("ignore_boxes") for t in targets]
        proposals = self.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels,
                                                                ignore_boxes=ignore_boxes)
        sampled_inds = self.subsample(labels)
        matched_gt_boxes = []
        for img_id, img_sampled_inds in enumerate(sampled_inds):
            proposals[img_id] = proposals[img_id][img_sampled_inds]
            labels[img_id] = labels[img_id][img_sampled_inds]
            matched_idxs[img_id] = matched_idxs[img_id][img_sampled_inds]
            gt_boxes_in_image = gt_boxes[img_id]
            if gt_boxes_in_image.numel() == 0:
                gt_boxes_in_image = torch.zeros((1, 4), dtype=dtype, device=device)
            matched_gt_boxes.append(gt_boxes_in_image[matched_idxs[img_id]])
        regression_targets = self.box_coder.encode(matched_gt_boxes, proposals)
        return proposals, matched_idxs, labels, regression_targets

    def assign_targets_to_proposals(
        self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor],
        ignore_boxes: list[Tensor | None] | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Matches [P] (the target index, 0 where none) and labels [P] (class >= 1, 0 background,
        -1 neither) per image, as torchvision's, with the targets matched to the proposals by
        ``self.box_similarity`` (torchvision's own calls ``box_iou`` directly) and the
        non-positive proposals inside one of the image's ``ignore_boxes`` ([M, 4] xyxy or None per
        image; None: no ignore regions) set to -1. With IoU and no ignore boxes: torchvision's."""
        matched_idxs, labels = [], []
        regions = ignore_boxes if ignore_boxes is not None else [None] * len(proposals)
        for proposals_in_image, gt_boxes_in_image, gt_labels_in_image, regions_in_image in zip(
            proposals, gt_boxes, gt_labels, regions, strict=True
        ):
            if gt_boxes_in_image.numel() == 0:  # background image
                clamped = torch.zeros((proposals_in_image.shape[0],), dtype=torch.int64,
                                      device=proposals_in_image.device)
                labels_in_image = torch.zeros_like(clamped)
            else:
                quality = self.box_similarity(gt_boxes_in_image, proposals_in_image)
                matched = self.proposal_matcher(quality)
                clamped = matched.clamp(min=0)
                labels_in_image = gt_labels_in_image[clamped].to(dtype=torch.int64)
                labels_in_image[matched == self.proposal_matcher.BELOW_LOW_THRESHOLD] = 0
                labels_in_image[matched == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1
            ignored = inside_ignore(proposals_in_image, regions_in_image, self.ignore_iof_thr)
            if ignored is not None:
                labels_in_image[ignored & (labels_in_image < 1)] = -1
            matched_idxs.append(clamped)
            labels.append(labels_in_image)
        return matched_idxs, labels

    def postprocess_detections(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """torchvision's post-processing (softmax, decode, clip, score threshold, small boxes,
        per-class NMS; its per-image cut :data:`~mrae.modeling.caps.UNCUT`), then ``self.caps``:
        at most ``per_class`` of each class and ``per_image`` in all; per image, in descending
        score order."""
        boxes, scores, labels = super().postprocess_detections(class_logits, box_regression, proposals,
                                                               image_shapes)
        num_classes = class_logits.shape[-1]
        kept: tuple[list[Tensor], list[Tensor], list[Tensor]] = ([], [], [])
        for found in zip(boxes, scores, labels, strict=True):
            keep = self.caps.keep(found[1], found[2], num_classes)
            for out, values in zip(kept, found, strict=True):
                out.append(values[keep])
        return kept
