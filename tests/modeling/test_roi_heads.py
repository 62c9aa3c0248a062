"""CappedRoIHeads' post-processing is torchvision's own, then the per-class and per-image caps:
torchvision's, bit for bit, where the per-class cap does not bind; the caps where it does."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads

from mrae.modeling.caps import UNCUT, DetectionCaps
from mrae.modeling.roi_heads import CappedRoIHeads, cap_detections


def torchvision_roi_heads(score_thresh: float, nms_thresh: float, per_image: int) -> RoIHeads:
    """torchvision's own RoIHeads, cutting each image's detections to ``per_image``."""
    return RoIHeads(None, None, None, 0.5, 0.5, 64, 0.25, None, score_thresh, nms_thresh, per_image)


def heads(score_thresh: float, nms_thresh: float, per_class: int, per_image: int) -> CappedRoIHeads:
    return CappedRoIHeads(
        None, None, None, fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=64,
        positive_fraction=0.25, bbox_reg_weights=None, score_thresh=score_thresh,
        nms_thresh=nms_thresh, caps=DetectionCaps(per_image, per_class),
    )


def random_inputs(seed: int, counts: list[int], num_classes: int, scores: str = "distinct"):
    """Logits [R, C], regressions [R, 4C], proposals (xyxy inside 96 x 128 images) per image.

    scores: "distinct", "ties" (few distinct scores: NMS and the caps meet equal scores) or
    "dominant" (class 1 scores highest: the per-class cap decides what the per-image cap sees).
    """
    g = torch.Generator().manual_seed(seed)
    total = sum(counts)
    logits = torch.randn(total, num_classes, generator=g) * 3
    if scores == "ties":
        logits = logits.round()
    elif scores == "dominant":
        logits[:, 1] += 4
    regression = torch.randn(total, 4 * num_classes, generator=g) * 0.5
    proposals = []
    for n in counts:
        xy = torch.rand(n, 2, generator=g) * torch.tensor([128.0, 96.0])
        wh = torch.rand(n, 2, generator=g) * 40 + 0.5
        proposals.append(torch.cat([xy, xy + wh], 1))
    return logits, regression, proposals, [(96, 128)] * len(counts)


CASES = [  # (score_thresh, nms_thresh, per_class, per_image)
    (0.05, 0.5, 100, 300),
    (0.0, 1.0, 5, 8),
    (0.0, 0.3, 3, 100),
    (0.2, 0.7, 50, 4),
    (0.99, 0.5, 10, 10),  # almost nothing passes the threshold
]


@pytest.mark.parametrize("scores", ["distinct", "ties", "dominant"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_postprocess_is_torchvisions_then_the_caps(case, scores):
    score_thresh, nms_thresh, per_class, per_image = case
    roi_heads = heads(*case)
    assert roi_heads.detections_per_img == UNCUT  # torchvision's own cut: out of reach
    theirs = torchvision_roi_heads(score_thresh, nms_thresh, per_image)
    for seed, counts, num_classes in [(0, [200, 150], 4), (1, [0, 60], 2), (2, [300], 7)]:
        inputs = random_inputs(seed, counts, num_classes, scores)
        got = roi_heads.postprocess_detections(*inputs)
        uncut = RoIHeads.postprocess_detections(roi_heads, *inputs)
        cut = theirs.postprocess_detections(*inputs)
        for image, (boxes, found_scores, labels) in enumerate(zip(*uncut, strict=True)):
            keep = cap_detections(found_scores, labels, per_class, per_image, num_classes)
            expected = (boxes[keep], found_scores[keep], labels[keep])
            for ours, reference in zip((got[0][image], got[1][image], got[2][image]), expected, strict=True):
                assert ours.dtype == reference.dtype and torch.equal(ours, reference)
            if per_class >= per_image:  # the per-class cap cannot bind: torchvision's own result
                for ours, plain in zip((got[0][image], got[1][image], got[2][image]),
                                       (cut[0][image], cut[1][image], cut[2][image]), strict=True):
                    assert torch.equal(ours, plain)


def test_caps_hold_and_scores_descend():
    roi_heads = heads(0.0, 1.0, per_class=5, per_image=12)
    inputs = random_inputs(3, [400], 4, "dominant")
    boxes, scores, labels = roi_heads.postprocess_detections(*inputs)
    counts = torch.bincount(labels[0], minlength=4)
    assert counts[0] == 0 and counts[1] == 5 and (counts <= 5).all() and len(scores[0]) == 12
    assert torch.all(scores[0][:-1] >= scores[0][1:])
    assert isinstance(boxes[0], Tensor) and boxes[0].shape == (12, 4)


def test_the_per_class_cap_picks_before_the_per_image_one():
    """Where one class dominates, torchvision's per-image cut (before any per-class cap) would
    leave the other classes fewer detections than the per-image cap has room for."""
    roi_heads = heads(0.0, 1.0, per_class=5, per_image=12)
    inputs = random_inputs(3, [400], 4, "dominant")
    _, _, labels = roi_heads.postprocess_detections(*inputs)
    _, _, cut = torchvision_roi_heads(0.0, 1.0, 12).postprocess_detections(*inputs)
    assert (cut[0] == 1).sum() > 5  # torchvision's first 12: mostly the dominant class
    assert len(labels[0]) == 12 and (labels[0] != 1).sum() == 7  # ours: 5 of it, 7 of the others
