"""Ignore regions in training, as mmdetection's ``ignore_iof_thr``: neither positives nor negatives.

A training target may carry ``"ignore_boxes"``: FloatTensor [M, 4] xyxy in the same pixels as its
``"boxes"`` (the crowd annotations and ignore regions of :class:`mrae.data.coco.CocoDetection`).
An anchor (RPN) or a proposal (RoI head) is *ignored* when its intersection over foreground with
some ignore box, ``IoF = area(box ∩ region) / area(box)``, exceeds ``ignore_iof_thr`` and it is
not a positive: its label becomes -1, which torchvision's samplers never draw. Without ignore
boxes (or with the threshold None or negative) the labels are torchvision's, bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mrae.errors import ConfigError


def check_iof_thr(value: object) -> float | None:
    """``model.ignore_iof_thr``: None or a negative number (off), or a fraction in [0, 1].

    Returns the threshold, or None when ignore regions are off. Raises ConfigError otherwise.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value > 1:
        raise ConfigError(
            f"model.ignore_iof_thr={value!r} is not valid; give an IoF in [0, 1], or null "
            "(or a negative number) to train without ignore regions"
        )
    return None if value < 0 else float(value)


def box_iof(boxes: Tensor, regions: Tensor) -> Tensor:
    """Intersection over the area of ``boxes``: [N, 4] x [M, 4] xyxy -> [N, M] in [0, 1].

    A box of zero area has IoF 0 with every region.
    """
    lt = torch.max(boxes[:, None, :2], regions[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    return torch.where(area[:, None] > 0, inter / area[:, None].clamp(min=1e-12), 0.0)


def inside_ignore(boxes: Tensor, regions: Tensor | None, thr: float | None) -> Tensor | None:
    """Bool [N]: the ``boxes`` [N, 4] whose IoF with one of ``regions`` [M, 4] exceeds ``thr``;
    None when there is nothing to ignore (no regions, or ``thr`` None)."""
    if thr is None or regions is None or regions.numel() == 0 or boxes.numel() == 0:
        return None
    return box_iof(boxes, regions.to(boxes)).amax(dim=1) > thr


def mark_ignored(matched: Tensor, anchors: Tensor, regions: Tensor | None, thr: float | None,
                 mark: int = -2) -> Tensor:
    """A one-stage host's matches [A] (>= 0: the target an anchor or point is assigned to, < 0:
    background or neither) with the unmatched anchors inside an ignore region (IoF of their box
    ``anchors`` [A, 4] > ``thr``) set to ``mark``; ``matched`` itself when nothing is ignored."""
    ignored = inside_ignore(anchors, regions, thr)
    if ignored is None:
        return matched
    marked = matched.clone()
    marked[ignored & (matched < 0)] = mark
    return marked
