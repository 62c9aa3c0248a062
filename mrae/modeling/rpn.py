"""The region proposal network of the Faster R-CNN host: torchvision's ``RegionProposalNetwork``
built from one record of settings, with ignore regions in training and its proposal counts as
public settings.

    rpn = RPN(anchor_generator, RPNHead(256, 12), RPNSettings(post_nms_top_n_test=300))
    wider = rpn.with_post_nms_top_n(testing=1000)  # the same head and anchors, another count

torchvision keeps the counts in private dicts that its ``pre_nms_top_n()`` / ``post_nms_top_n()``
read; :class:`RPN` overrides those two methods to read its :class:`RPNSettings` instead, so no
count is ever changed in place: another count is another (parameter-sharing) RPN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import box_iou

from mrae.modeling.ignore import inside_ignore

#: ``(boxes [N, 4], boxes [M, 4]) -> [N, M]``, both xyxy: how well a target and an anchor match
#: (torchvision's: IoU).
BoxSimilarity = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class RPNSettings:
    """torchvision's RPN settings (its FasterRCNN's ``rpn_*`` keywords, the same defaults) and
    mrae's: ``ignore_iof_thr`` (:mod:`mrae.modeling.ignore`; None: off) and ``box_similarity``
    (how anchors are matched to targets; the thresholds are on its scale)."""

    pre_nms_top_n_train: int = 2000  # proposals per map level before NMS, in training
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_train: int = 2000  # proposals per image after NMS, in training
    post_nms_top_n_test: int = 1000
    nms_thresh: float = 0.7
    fg_iou_thresh: float = 0.7  # anchors matched at least this well are positives
    bg_iou_thresh: float = 0.3  # those matched less well than every target: negatives
    batch_size_per_image: int = 256  # anchors sampled per image for the loss
    positive_fraction: float = 0.5
    score_thresh: float = 0.0
    ignore_iof_thr: float | None = None
    box_similarity: BoxSimilarity = box_iou


class RPN(RegionProposalNetwork):
    """torchvision's RPN from :class:`RPNSettings`: the counts read from ``settings``, targets
    matched to anchors by ``settings.box_similarity``, and in training the non-positive anchors
    inside a target's ``"ignore_boxes"`` (IoF > ``settings.ignore_iof_thr``) labelled -1 (neither
    positive nor negative). With IoU and no ignore boxes it is torchvision's, bit for bit."""

    def __init__(self, anchor_generator: AnchorGenerator, head: nn.Module, settings: RPNSettings) -> None:
        s = settings
        super().__init__(
            anchor_generator, head, s.fg_iou_thresh, s.bg_iou_thresh, s.batch_size_per_image,
            s.positive_fraction,
            {"training": s.pre_nms_top_n_train, "testing": s.pre_nms_top_n_test},  # read by nothing:
            {"training": s.post_nms_top_n_train, "testing": s.post_nms_top_n_test},  # see the methods
            s.nms_thresh, score_thresh=s.score_thresh,
        )
        self.box_similarity = s.box_similarity
        self.settings = settings

    def pre_nms_top_n(self) -> int:
        """Proposals kept per map level before NMS (training or evaluation count)."""
        return self.settings.pre_nms_top_n_train if self.training else self.settings.pre_nms_top_n_test

    def post_nms_top_n(self) -> int:
        """Proposals kept per image after NMS (training or evaluation count)."""
        return self.settings.post_nms_top_n_train if self.training else self.settings.post_nms_top_n_test

    def with_post_nms_top_n(self, *, training: int | None = None, testing: int | None = None) -> RPN:
        """This RPN keeping another count of proposals after its NMS (None: the same), in training
        and in evaluation: a new module sharing this one's anchor generator and head (the same
        parameters), in the same mode. Counts below 1 raise ValueError."""
        changes = {}
        for mode, count in (("train", training), ("test", testing)):
            if count is not None:
                if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                    raise ValueError(f"post_nms_top_n {mode}={count!r}: give a whole number >= 1")
                changes[f"post_nms_top_n_{mode}"] = count
        return RPN(self.anchor_generator, self.head, replace(self.settings, **changes)).train(self.training)

    def assign_targets_to_anchors(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """torchvision's labels (1 positive, 0 negative, -1 neither) per image [A], with the
        ignored anchors set to -1; the matched boxes [A, 4] unchanged."""
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        for anchors_per_image, target, labels_per_image in zip(anchors, targets, labels, strict=True):
            ignored = inside_ignore(anchors_per_image, target.get("ignore_boxes"), self.settings.ignore_iof_thr)
            if ignored is not None:
                labels_per_image[ignored & (labels_per_image != 1.0)] = -1.0
        return labels, matched
