"""The detection caps every host applies after torchvision's own post-processing: at most
``per_class`` detections of each class and ``per_image`` in all (the paper: 100 and 300), best
first.

torchvision cuts each image's detections to its ``detections_per_img`` right after its NMS; a
per-class cap applied after that cut would pick from fewer candidates than it should (a dominant
class fills the cut, the others lose detections the per-image cap had room for). So every host
gives torchvision :data:`UNCUT`, which no image reaches, and keeps its caps in a
:class:`DetectionCaps` record (``caps``, on Faster R-CNN's ``roi_heads`` or on a one-stage model)
that its ``postprocess_detections`` applies to torchvision's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: torchvision's per-image cut (its ``detections_per_img``) in every host: out of reach.
UNCUT = 2**31 - 1


@dataclass(frozen=True)
class DetectionCaps:
    """At most ``per_class`` detections of each class and ``per_image`` in all (each >= 1)."""

    per_image: int = 300
    per_class: int = 100

    def __post_init__(self) -> None:
        for name in ("per_image", "per_class"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"detection cap {name}={value!r}: give a whole number >= 1")

    def keep(self, scores: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
        """:func:`cap_detections` with these caps: the indices [<= per_image] to keep, best first."""
        return cap_detections(scores, labels, self.per_class, self.per_image, num_classes)


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


def _holder(model: nn.Module) -> object:
    return getattr(model, "roi_heads", model)


def detections_per_image(model: nn.Module) -> int | None:
    """The per-image detection cap of a host (its :class:`DetectionCaps`, on Faster R-CNN's
    ``roi_heads`` or on a one-stage model), else of another model's own ``detections_per_img``
    (an exported model's, a torchvision detector's); None for a model without one."""
    holder = _holder(model)
    caps = getattr(holder, "caps", None)
    if isinstance(caps, DetectionCaps):
        return caps.per_image
    value = getattr(holder, "detections_per_img", None)
    return int(value) if isinstance(value, int) else None


def set_detection_caps(model: nn.Module, per_image: int | None = None,
                       per_class: int | None = None) -> None:
    """Set a host's caps (a new :class:`DetectionCaps` where :func:`detections_per_image` finds
    them); None leaves a cap as it is. Both must be >= 1 (ValueError). A model without a
    :class:`DetectionCaps` gets its ``detections_per_img`` / ``detections_per_class`` set."""
    holder = _holder(model)
    caps = getattr(holder, "caps", None)
    if isinstance(caps, DetectionCaps):
        holder.caps = DetectionCaps(caps.per_image if per_image is None else int(per_image),
                                    caps.per_class if per_class is None else int(per_class))
        return
    for name, value in (("detections_per_img", per_image), ("detections_per_class", per_class)):
        if value is None:
            continue
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
        setattr(holder, name, int(value))
