"""What the one-stage hosts (RetinaNet, FCOS) share: the post-processing with the caps after their
NMS, without the background label."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import boxes as box_ops

from mrae.modeling.caps import cap_detections

#: The smallest box side kept, in px (torchvision's RoIHeads: 1e-2).
MIN_SIZE = 1e-2


class CappedOneStage(ABC):
    """Mixin before torchvision's RetinaNet or FCOS: its post-processing (per map level: score
    threshold, the ``topk_candidates`` best, decode, clip; per-class NMS), then drop label 0 and
    boxes under ``MIN_SIZE`` px wide or high (clipped to the image's border: Faster R-CNN's box
    head drops them too), then keep at most ``detections_per_class`` of each class and
    ``detections_per_img`` in all, in place of torchvision's per-image cut (which would drop
    candidates before the per-class cap picks).

    A host says how a level's scores are made (:meth:`level_scores`) and how boxes are decoded
    (:meth:`decode_boxes`); the rest is torchvision's, step for step.

    mrae's labels count the background as torchvision's two-stage models do (objects are 1..C-1
    of ``num_classes`` C): a one-stage head has a logit for label 0 that no target ever makes
    positive, so it is trained towards "no object" and its detections are dropped.
    """

    detections_per_img: int
    detections_per_class: int = 100
    num_classes: int = 2
    score_thresh: float
    nms_thresh: float
    topk_candidates: int

    @abstractmethod
    def level_scores(self, head_outputs: dict[str, list[Tensor]], image: int, level: int) -> Tensor:
        """The scores [HWA, C] of one image's map level (RetinaNet: the sigmoid of the logits)."""

    @abstractmethod
    def decode_boxes(self, regression: Tensor, anchors: Tensor) -> Tensor:
        """Boxes [K, 4] xyxy from their regression [K, 4] and anchors [K, 4]."""

    def postprocess_detections(
        self, head_outputs: dict[str, list[Tensor]], anchors: list[list[Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Per image ``{"boxes", "scores", "labels"}``, capped, in descending score order."""
        detections = []
        for index, (anchors_per_image, image_shape) in enumerate(zip(anchors, image_shapes, strict=True)):
            image_boxes, image_scores, image_labels = [], [], []
            for level, anchors_per_level in enumerate(anchors_per_image):
                scores = self.level_scores(head_outputs, index, level)
                num_classes = scores.shape[-1]
                scores = scores.flatten()
                keep_idxs = scores > self.score_thresh
                scores = scores[keep_idxs]
                topk_idxs = torch.where(keep_idxs)[0]
                num_topk = det_utils._topk_min(topk_idxs, self.topk_candidates, 0)
                scores, idxs = scores.topk(num_topk)
                topk_idxs = topk_idxs[idxs]
                anchor_idxs = torch.div(topk_idxs, num_classes, rounding_mode="floor")
                regression = head_outputs["bbox_regression"][level][index]
                boxes = self.decode_boxes(regression[anchor_idxs], anchors_per_level[anchor_idxs])
                image_boxes.append(box_ops.clip_boxes_to_image(boxes, image_shape))
                image_scores.append(scores)
                image_labels.append(topk_idxs % num_classes)
            boxes, scores, labels = (torch.cat(image_boxes), torch.cat(image_scores),
                                     torch.cat(image_labels))
            keep = box_ops.batched_nms(boxes, scores, labels, self.nms_thresh)  # by descending score
            found = {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
            boxes = found["boxes"]
            objects = ((found["labels"] > 0) & (boxes[:, 2] - boxes[:, 0] >= MIN_SIZE)
                       & (boxes[:, 3] - boxes[:, 1] >= MIN_SIZE))
            found = {k: v[objects] for k, v in found.items()}
            keep = cap_detections(found["scores"], found["labels"], self.detections_per_class,
                                  self.detections_per_img, self.num_classes)
            detections.append({k: v[keep] for k, v in found.items()})
        return detections
