"""CappedRoIHeads' post-processing (torchvision's, then the per-class and per-image caps) gives
exactly what the former copy of torchvision's code with the cap inside it gave."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torchvision.ops import boxes as box_ops

from mrae.modeling.roi_heads import CappedRoIHeads, cap_detections


def former_postprocess_detections(heads, class_logits, box_regression, proposals, image_shapes):
    """The reference: CappedRoIHeads.postprocess_detections as it was, a copy of torchvision's
    with ``cap_detections`` in place of its per-image cut."""
    num_classes = class_logits.shape[-1]
    boxes_per_image = [len(p) for p in proposals]
    pred_boxes = heads.box_coder.decode(box_regression, proposals)
    pred_scores = class_logits.softmax(-1)

    all_boxes, all_scores, all_labels = [], [], []
    for boxes, scores, image_shape in zip(
        pred_boxes.split(boxes_per_image, 0),
        pred_scores.split(boxes_per_image, 0),
        image_shapes,
        strict=True,
    ):
        boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
        labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
        boxes = boxes[:, 1:].reshape(-1, 4)
        scores = scores[:, 1:].reshape(-1)
        labels = labels[:, 1:].reshape(-1)

        keep = torch.where(scores > heads.score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.batched_nms(boxes, scores, labels, heads.nms_thresh)
        keep = keep[cap_detections(scores[keep], labels[keep], heads.detections_per_class,
                                   heads.detections_per_img)]
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_labels.append(labels[keep])
    return all_boxes, all_scores, all_labels


def heads(score_thresh: float, nms_thresh: float, per_class: int, per_image: int) -> CappedRoIHeads:
    return CappedRoIHeads(
        None, None, None, fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=64,
        positive_fraction=0.25, bbox_reg_weights=None, score_thresh=score_thresh,
        nms_thresh=nms_thresh, detections_per_img=per_image, detections_per_class=per_class,
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
def test_postprocess_is_the_former_copy_bit_for_bit(case, scores):
    roi_heads = heads(*case)
    for seed, counts, num_classes in [(0, [200, 150], 4), (1, [0, 60], 2), (2, [300], 7)]:
        inputs = random_inputs(seed, counts, num_classes, scores)
        got = roi_heads.postprocess_detections(*inputs)
        expected = former_postprocess_detections(roi_heads, *inputs)
        for ours, theirs in zip(got, expected, strict=True):
            assert len(ours) == len(theirs) == len(counts)
            for a, b in zip(ours, theirs, strict=True):
                assert a.dtype == b.dtype and torch.equal(a, b)
        assert roi_heads.detections_per_img == case[3]  # the raised limit is put back


def test_caps_hold_and_scores_descend():
    roi_heads = heads(0.0, 1.0, per_class=5, per_image=12)
    inputs = random_inputs(3, [400], 4, "dominant")
    boxes, scores, labels = roi_heads.postprocess_detections(*inputs)
    counts = torch.bincount(labels[0], minlength=4)
    assert counts[0] == 0 and counts[1] == 5 and (counts <= 5).all() and len(scores[0]) == 12
    assert torch.all(scores[0][:-1] >= scores[0][1:])
    assert isinstance(boxes[0], Tensor) and boxes[0].shape == (12, 4)
