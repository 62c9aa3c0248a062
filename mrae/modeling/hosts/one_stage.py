"""What the one-stage hosts (RetinaNet, FCOS) share: the caps after their NMS, without the
background label."""

from __future__ import annotations

import sys

from torch import Tensor

from mrae.modeling.caps import cap_detections

#: The smallest box side kept, in px (torchvision's RoIHeads: 1e-2).
MIN_SIZE = 1e-2


class CappedOneStage:
    """Mixin before torchvision's RetinaNet or FCOS: after its per-class NMS, drop label 0 and
    boxes under ``MIN_SIZE`` px wide or high (clipped to the image's border: Faster R-CNN's box
    head drops them too), then keep at most ``detections_per_class`` of each class and
    ``detections_per_img`` in all.

    mrae's labels count the background as torchvision's two-stage models do (objects are 1..C-1
    of ``num_classes`` C): a one-stage head has a logit for label 0 that no target ever makes
    positive, so it is trained towards "no object" and its detections are dropped.
    """

    detections_per_img: int
    detections_per_class: int = 100
    num_classes: int = 2

    def postprocess_detections(self, *args, **kwargs) -> list[dict[str, Tensor]]:
        """torchvision's post-processing without its per-image cut, then the caps."""
        per_image, self.detections_per_img = self.detections_per_img, sys.maxsize
        try:
            detections = super().postprocess_detections(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.detections_per_img = per_image
        capped = []
        for found in detections:
            boxes = found["boxes"]
            objects = ((found["labels"] > 0) & (boxes[:, 2] - boxes[:, 0] >= MIN_SIZE)
                       & (boxes[:, 3] - boxes[:, 1] >= MIN_SIZE))
            found = {k: v[objects] for k, v in found.items()}
            keep = cap_detections(found["scores"], found["labels"], self.detections_per_class, per_image,
                                  self.num_classes)
            capped.append({k: v[keep] for k, v in found.items()})
        return capped
