"""How well two boxes match, for label assignment: IoU (torchvision's) or the Normalized Gaussian
Wasserstein Distance (NWD) of Wang et al. 2021, "A Normalized Gaussian Wasserstein Distance for
Tiny Object Detection" (arXiv 2110.13389).

NWD models a box ``(cx, cy, w, h)`` as the 2-D Gaussian ``N((cx, cy), diag(w^2/4, h^2/4))``; the
2-Wasserstein distance between two such Gaussians is

    W2^2 = (cx1 - cx2)^2 + (cy1 - cy2)^2 + ((w1 - w2)^2 + (h1 - h2)^2) / 4

and ``NWD = exp(-W2 / C)`` in (0, 1]: 1 for equal boxes, smoothly smaller as the centres or sizes
part, and never 0 for boxes that do not overlap (IoU is 0 for all of them, and a 2 px shift of a
12 px box already drops it below 0.7). ``C`` (px) sets the scale: NWD = t at ``W2 = C ln(1/t)``.
The default, 12.8, is the authors' (their code, jwwangchn/NWD, and the AI-TOD paper: the dataset's
mean absolute box size); fitting C to one's own dataset's mean box size is the alternative the
paper names (docs/nwd.md).

Both functions take boxes ``[N, 4]`` and ``[M, 4]`` xyxy in pixels and return ``[N, M]``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor
from torchvision.ops import box_iou

from mrae.choices import BOX_SIMILARITIES
from mrae.errors import ConfigError

#: NWD's constant C in px (the authors': AI-TOD's mean absolute box size).
NWD_CONSTANT = 12.8
#: Added to the squared distances as the authors' code does (keeps sqrt's gradient finite).
EPS = 1e-6

BoxSimilarity = Callable[[Tensor, Tensor], Tensor]


def nwd(boxes1: Tensor, boxes2: Tensor, constant: float = NWD_CONSTANT) -> Tensor:
    """The Normalized Gaussian Wasserstein Distance of every pair: [N, 4] x [M, 4] xyxy px ->
    [N, M] in (0, 1]. Finite for zero-size boxes (a point is a Gaussian of zero spread)."""
    centre1 = (boxes1[:, None, :2] + boxes1[:, None, 2:]) / 2
    centre2 = (boxes2[None, :, :2] + boxes2[None, :, 2:]) / 2
    size1 = boxes1[:, None, 2:] - boxes1[:, None, :2]
    size2 = boxes2[None, :, 2:] - boxes2[None, :, :2]
    centre_distance = ((centre1 - centre2) ** 2).sum(-1)
    size_distance = ((size1 - size2) ** 2).sum(-1) / 4
    return torch.exp(-torch.sqrt(centre_distance + size_distance + EPS) / constant)


def check_nwd_constant(value: object) -> float:
    """``model.nwd_constant``: a finite number > 0 (px). Raises ConfigError otherwise."""
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value <= 0):
        raise ConfigError(f"model.nwd_constant={value!r} is not valid; give a number of pixels > 0 "
                          f"(the authors' {NWD_CONSTANT}, or the dataset's mean box size)")
    return float(value)


def box_similarity(name: object, nwd_constant: object = NWD_CONSTANT) -> BoxSimilarity:
    """The measure ``name`` (:data:`mrae.choices.BOX_SIMILARITIES`): torchvision's ``box_iou`` itself for
    "iou", :func:`nwd` with ``nwd_constant`` for "nwd". Raises ConfigError naming the key."""
    if name not in BOX_SIMILARITIES:
        raise ConfigError(f"model.box_similarity={name!r} is not valid; choose one of: "
                          f"{', '.join(BOX_SIMILARITIES)}")
    constant = check_nwd_constant(nwd_constant)
    if name == "iou":
        return box_iou
    return functools.partial(nwd, constant=constant)


def check_assignment(detector: str, name: object, nwd_constant: object) -> None:
    """``model.box_similarity`` and ``model.nwd_constant`` for ``detector``: a known measure, a
    constant > 0 that differs from its default only with "nwd", and not "nwd" on FCOS (it assigns
    points by centre sampling, not by box overlap: docs/nwd.md). Raises ConfigError, one line."""
    box_similarity(name, nwd_constant)
    if name == "nwd" and detector == "fcos":
        raise ConfigError("model.box_similarity='nwd' does not apply to detector 'fcos' (it assigns points "
                          "by centre sampling, not by box overlap: docs/nwd.md); remove it, or use "
                          "faster_rcnn or retinanet")
    if name != "nwd" and float(nwd_constant) != NWD_CONSTANT:  # type: ignore[arg-type]
        raise ConfigError(f"model.nwd_constant={nwd_constant!r} applies to model.box_similarity=nwd only, "
                          f"not to {name!r}; remove it")
