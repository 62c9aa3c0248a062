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
from torchvision.models.detection.rpn import RegionProposalNetwork

from mrae.errors import ConfigError
from mrae.modeling.torchvision_private import rpn_nms_top_n, set_rpn_post_nms_top_n


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


class IgnoringRPN(RegionProposalNetwork):
    """torchvision's RPN whose non-positive anchors inside an ignore box (IoF > ``ignore_iof_thr``)
    get label -1 instead of 0 (background) or torchvision's own -1.

    Built from an existing RPN (:meth:`from_rpn`): its head, anchor generator and settings. How
    many proposals it keeps after its NMS is public here (:attr:`test_post_nms_top_n`,
    :meth:`set_post_nms_top_n`); torchvision keeps the counts in a private dict.
    """

    ignore_iof_thr: float | None = None

    @classmethod
    def from_rpn(cls, rpn: RegionProposalNetwork, ignore_iof_thr: float | None) -> IgnoringRPN:
        """The same RPN (its anchor generator and head, no new parameters, the same settings)
        with ignore regions."""
        pre_nms_top_n, post_nms_top_n = rpn_nms_top_n(rpn)
        new = cls(
            rpn.anchor_generator,
            rpn.head,
            fg_iou_thresh=rpn.proposal_matcher.high_threshold,
            bg_iou_thresh=rpn.proposal_matcher.low_threshold,
            batch_size_per_image=rpn.fg_bg_sampler.batch_size_per_image,
            positive_fraction=rpn.fg_bg_sampler.positive_fraction,
            pre_nms_top_n=pre_nms_top_n,
            post_nms_top_n=post_nms_top_n,
            nms_thresh=rpn.nms_thresh,
            score_thresh=rpn.score_thresh,
        )
        new.proposal_matcher.allow_low_quality_matches = rpn.proposal_matcher.allow_low_quality_matches
        new.ignore_iof_thr = ignore_iof_thr
        return new

    @property
    def test_post_nms_top_n(self) -> int:
        """How many proposals per image it keeps after its NMS in evaluation (``model.eval()``)."""
        return rpn_nms_top_n(self)[1]["testing"]

    def set_post_nms_top_n(self, *, training: int | None = None, testing: int | None = None) -> None:
        """Set how many proposals per image it keeps after its NMS in training and in evaluation
        (None: unchanged)."""
        for mode, count in (("training", training), ("testing", testing)):
            if count is not None:
                if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                    raise ValueError(f"post_nms_top_n {mode}={count!r}: give a whole number >= 1")
                set_rpn_post_nms_top_n(self, mode, count)

    def assign_targets_to_anchors(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's labels (1 positive, 0 negative, -1 neither) per image [A], with the
        ignored anchors set to -1; the matched boxes [A, 4] unchanged."""
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        for anchors_per_image, target, labels_per_image in zip(anchors, targets, labels, strict=True):
            ignored = inside_ignore(anchors_per_image, target.get("ignore_boxes"), self.ignore_iof_thr)
            if ignored is not None:
                labels_per_image[ignored & (labels_per_image != 1.0)] = -1.0
        return labels, matched


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
