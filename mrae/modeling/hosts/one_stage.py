"""What the one-stage hosts (RetinaNet, FCOS) share: the caps after torchvision's post-processing,
without the background label."""

from __future__ import annotations

from torch import Tensor

from mrae.modeling.caps import DetectionCaps

#: The smallest box side kept, in px (torchvision's RoIHeads: 1e-2).
MIN_SIZE = 1e-2


class CappedOneStage:
    """Mixin before torchvision's RetinaNet or FCOS: torchvision's post-processing (per map level:
    score threshold, the ``topk_candidates`` best, decode, clip; per-class NMS; its per-image cut
    :data:`~mrae.modeling.caps.UNCUT`, given at construction), then drop label 0 and boxes under
    ``MIN_SIZE`` px wide or high (clipped to the image's border: Faster R-CNN's box head drops
    them too), then ``self.caps``: at most ``per_class`` of each class and ``per_image`` in all.

    mrae's labels count the background as torchvision's two-stage models do (objects are 1..C-1
    of ``num_classes`` C): a one-stage head has a logit for label 0 that no target ever makes
    positive, so it is trained towards "no object" and its detections are dropped.
    """

    caps: DetectionCaps
    num_classes: int = 2

    def postprocess_detections(
        self, head_outputs: dict[str, list[Tensor]], anchors: list[list[Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Per image ``{"boxes", "scores", "labels"}``, capped, in descending score order."""
        detections = []
        for found in super().postprocess_detections(head_outputs, anchors, image_shapes):  # type: ignore[misc]
            boxes = found["boxes"]
            objects = ((found["labels"] > 0) & (boxes[:, 2] - boxes[:, 0] >= MIN_SIZE)
                       & (boxes[:, 3] - boxes[:, 1] >= MIN_SIZE))
            found = {k: v[objects] for k, v in found.items()}
            keep = self.caps.keep(found["scores"], found["labels"], self.num_classes)
            detections.append({k: v[keep] for k, v in found.items()})
        return detections
