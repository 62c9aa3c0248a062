"""RoI heads with a per-class detection cap (torchvision caps only the detections per image) and
ignore regions in training (:mod:`mrae.modeling.ignore`)."""

from __future__ import annotations

import sys

from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads

from mrae.modeling.caps import cap_detections
from mrae.modeling.ignore import inside_ignore

__all__ = ["CappedRoIHeads", "cap_detections"]


class CappedRoIHeads(RoIHeads):
    """torchvision's RoIHeads whose post-processing keeps, after per-class NMS, at most
    `detections_per_class` detections of each class and `detections_per_img` in all
    (the paper: 100 per class, 300 per image).

    In training, a proposal that is not a positive and whose IoF with one of its image's
    ``"ignore_boxes"`` (target key, [M, 4] xyxy) exceeds ``ignore_iof_thr`` gets label -1, so the
    sampler draws it neither as a positive nor as a negative (None: no ignore regions).
    """

    def __init__(
        self, *args, detections_per_class: int = 100, ignore_iof_thr: float | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.detections_per_class = detections_per_class
        self.ignore_iof_thr = ignore_iof_thr
        self._ignore_boxes: list[Tensor | None] | None = None

    def select_training_samples(self, proposals: list[Tensor], targets: list[dict[str, Tensor]] | None):
        # torchvision's, with the targets' ignore boxes at hand for assign_targets_to_proposals
        self._ignore_boxes = [t.get("ignore_boxes") for t in targets] if targets is not None else None
        try:
            return super().select_training_samples(proposals, targets)
        finally:
            self._ignore_boxes = None

    def assign_targets_to_proposals(
        self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's matches [P] and labels [P] (class >= 1, 0 background, -1 neither) per
        image, with the non-positive proposals inside an ignore box set to -1."""
        matched_idxs, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        regions = self._ignore_boxes or [None] * len(proposals)
        for proposals_in_image, regions_in_image, labels_in_image in zip(
            proposals, regions, labels, strict=True
        ):
            ignored = inside_ignore(proposals_in_image, regions_in_image, self.ignore_iof_thr)
            if ignored is not None:
                labels_in_image[ignored & (labels_in_image < 1)] = -1
        return matched_idxs, labels

    def postprocess_detections(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """torchvision's post-processing (softmax, decode, clip, score threshold, small boxes,
        per-class NMS), then at most `detections_per_class` of each class and
        `detections_per_img` in all; per image, in descending score order."""
        # torchvision's, without its per-image cut (it would drop candidates before the per-class
        # cap picks); its NMS returns them by descending score, which cap_detections keeps.
        per_image, self.detections_per_img = self.detections_per_img, sys.maxsize
        try:
            all_boxes, all_scores, all_labels = super().postprocess_detections(
                class_logits, box_regression, proposals, image_shapes
            )
        finally:
            self.detections_per_img = per_image
        for i, (scores, labels) in enumerate(zip(all_scores, all_labels, strict=True)):
            keep = cap_detections(scores, labels, self.detections_per_class, per_image,
                                  class_logits.shape[-1])
            all_boxes[i], all_scores[i], all_labels[i] = all_boxes[i][keep], scores[keep], labels[keep]
        return all_boxes, all_scores, all_labels
