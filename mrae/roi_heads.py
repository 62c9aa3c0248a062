"""RoI heads with a per-class detection cap (torchvision caps only the detections per image)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops


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
    (the paper: 100 per class, 300 per image)."""

    def __init__(self, *args, detections_per_class: int = 100, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.detections_per_class = detections_per_class

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
