"""RoI heads with a per-class detection cap (torchvision caps only the detections per image) and
ignore regions in training (:mod:`mrae.modeling.ignore`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from mrae.modeling.ignore import inside_ignore


def cap_detections(scores: Tensor, labels: Tensor, per_class: int, per_image: int) -> Tensor:
    """Indices of the detections to keep: the best `per_class` of each label, then the best
    `per_image` of those, in descending score order.

    scores: [K] float, labels: [K] int64. Returns an int64 index tensor [<= per_image].
    """
    order = torch.argsort(scores, descending=True, stable=True)
    if len(order) == 0:
        return order
    # rank of each detection among those of its class (0 = best), by a cumulative count per class
    _, inverse = torch.unique(labels[order], return_inverse=True)
    onehot = nn.functional.one_hot(inverse)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1
    return order[rank < per_class][:per_image]


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
        # torchvision's postprocess_detections with the per-class cap before the per-image one.
        num_classes = class_logits.shape[-1]
        boxes_per_image = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals)
        pred_scores = class_logits.softmax(-1)

        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, image_shape in zip(
            pred_boxes.split(boxes_per_image, 0),
            pred_scores.split(boxes_per_image, 0),
            image_shapes,
            strict=True,
        ):
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
            # drop the background column, then one candidate per (proposal, class)
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)

            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)
            keep = keep[cap_detections(scores[keep], labels[keep], self.detections_per_class,
                                       self.detections_per_img)]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep])
        return all_boxes, all_scores, all_labels
