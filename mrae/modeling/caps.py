"""The detection caps every host applies after its NMS: at most ``detections_per_class`` of each
class and ``detections_per_img`` in all (the paper: 100 and 300), best first."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cap_detections(scores: Tensor, labels: Tensor, per_class: int, per_image: int,
                   num_classes: int | None = None) -> Tensor:
    """Indices of the detections to keep: the best `per_class` of each label, then the best
    `per_image` of those, in descending score order.

    scores: [K] float, labels: [K] int64 in [0, num_classes) (None: any labels). Returns an int64
    index tensor [<= per_image]. With ``num_classes`` the computation has static shapes (it
    exports to ONNX).
    """
    if torch.onnx.is_in_onnx_export():  # the exporter has no stable sort; TopK over all keeps ties in order too
        order = scores.topk(torch._shape_as_tensor(scores)[0]).indices  # type: ignore[arg-type]
    else:
        order = torch.argsort(scores, descending=True, stable=True)
    if num_classes is None:
        if len(order) == 0:
            return order
        # rank of each detection among those of its class (0 = best), by a cumulative count per class
        _, inverse = torch.unique(labels[order], return_inverse=True)
        onehot = nn.functional.one_hot(inverse)
    else:
        onehot = nn.functional.one_hot(labels[order], num_classes)
    rank = (onehot.cumsum(0) * onehot).sum(1) - 1
    return order[rank < per_class][:per_image]


def detections_per_image(model: nn.Module) -> int | None:
    """The per-image detection cap of a host (Faster R-CNN's ``roi_heads.detections_per_img``, a
    one-stage host's own ``detections_per_img``), or None for a model without one."""
    holder = getattr(model, "roi_heads", model)
    value = getattr(holder, "detections_per_img", None)
    return int(value) if isinstance(value, int) else None


def set_detection_caps(model: nn.Module, per_image: int | None = None,
                       per_class: int | None = None) -> None:
    """Set a host's caps (where it keeps them: :func:`detections_per_image`'s holder); None
    leaves a cap as it is. Both must be >= 1 (ValueError)."""
    holder = getattr(model, "roi_heads", model)
    for name, value in (("detections_per_img", per_image), ("detections_per_class", per_class)):
        if value is None:
            continue
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
        setattr(holder, name, int(value))
