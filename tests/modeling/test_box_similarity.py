"""Label assignment's measures (mrae.modeling.box_similarity): NWD against hand-computed values,
monotone in the centre offset, finite for degenerate boxes; under NWD a tiny box that IoU leaves
without a positive above the threshold gets some, in the RPN, the RoI heads and RetinaNet; the
bad values refused in one line. IoU stays torchvision's bit for bit: tests/modeling/test_golden.py."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import box_iou

from mrae.errors import ConfigError
from mrae.modeling.box_similarity import NWD_CONSTANT, box_similarity, check_assignment, nwd
from mrae.modeling.detector import build_detector
from mrae.modeling.rpn import RPN, RPNSettings

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SQUARE = torch.tensor([[0.0, 0.0, 10.0, 10.0]])


def test_nwd_equals_hand_computed_values():
    # same size, centres (5, 5) and (8, 9): W2 = 5
    shifted = torch.tensor([[3.0, 4.0, 13.0, 14.0]])
    assert nwd(SQUARE, shifted).item() == pytest.approx(math.exp(-5 / 12.8), rel=1e-5)
    # centres (5, 5) and (10, 15): 25 + 100; sizes (10, 10) and (20, 30): (100 + 400) / 4
    bigger = torch.tensor([[0.0, 0.0, 20.0, 30.0]])
    assert nwd(SQUARE, bigger).item() == pytest.approx(math.exp(-math.sqrt(250) / 12.8), rel=1e-5)
    assert nwd(SQUARE, bigger, constant=25.0).item() == pytest.approx(math.exp(-math.sqrt(250) / 25), rel=1e-5)
    assert nwd(SQUARE, SQUARE).item() == pytest.approx(1.0, abs=1e-4)
    both = nwd(torch.cat([SQUARE, shifted]), torch.cat([SQUARE, shifted, bigger]))
    assert both.shape == (2, 3) and both[0, 1] == both[1, 0] and both[1, 1] == both[0, 0]  # symmetric


def test_nwd_falls_with_the_centre_offset_and_is_never_zero():
    offsets = torch.arange(0.0, 40.0, 2.0)
    moved = SQUARE.repeat(len(offsets), 1) + torch.stack([offsets, offsets * 0] * 2, dim=1)
    values = nwd(SQUARE, moved)[0]
    assert torch.all(values[1:] < values[:-1])  # strictly monotone
    assert values[-1] > 0 and box_iou(SQUARE, moved)[0, -1] == 0  # IoU 0, NWD still ranks


def test_nwd_is_finite_for_degenerate_boxes():
    point = torch.tensor([[4.0, 4.0, 4.0, 4.0]])
    line = torch.tensor([[0.0, 3.0, 10.0, 3.0]])
    values = nwd(torch.cat([point, line]), torch.cat([point, line, SQUARE]))
    assert torch.isfinite(values).all() and (values > 0).all() and (values <= 1).all()
    assert values[0, 0].item() == pytest.approx(1.0, abs=1e-4)


def test_the_choice_gives_torchvisions_iou_itself_or_nwd_with_its_constant():
    assert box_similarity("iou") is box_iou
    measure = box_similarity("nwd", 20.0)
    assert torch.equal(measure(SQUARE, SQUARE + 3), nwd(SQUARE, SQUARE + 3, constant=20.0))
    assert NWD_CONSTANT == 12.8


@pytest.mark.parametrize(("call", "message"), [
    (lambda: box_similarity("giou"), "model.box_similarity='giou' is not valid; choose one of: iou, nwd"),
    (lambda: box_similarity("nwd", 0), "model.nwd_constant=0 is not valid"),
    (lambda: box_similarity("nwd", -3.0), "model.nwd_constant=-3.0 is not valid"),
    (lambda: box_similarity("nwd", float("nan")), "model.nwd_constant=nan is not valid"),
    (lambda: box_similarity("nwd", True), "model.nwd_constant=True is not valid"),
    (lambda: check_assignment("fcos", "nwd", 12.8), "does not apply to detector 'fcos'"),
    (lambda: check_assignment("faster_rcnn", "iou", 20.0), "applies to model.box_similarity=nwd only"),
    (lambda: build_detector(detector="fcos", box_similarity="nwd"),
     "model.box_similarity='nwd' applies to detector faster_rcnn / retinanet only, not to 'fcos'"),
    (lambda: build_detector(box_similarity="NWD"), "model.box_similarity='NWD' is not valid"),
])
def test_bad_values_are_refused_in_one_line(call, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        call()
    assert "\n" not in str(caught.value)


# a 6 x 6 px object 2 px off the centre of the nearest 8 px anchor (stride 4): IoU 0.43
TINY = {"boxes": torch.tensor([[5.0, 3.0, 11.0, 9.0]]), "labels": torch.tensor([1])}


def anchors() -> torch.Tensor:
    """8 and 16 px square anchors centred every 4 px over 32 x 32 px: [2 * 64, 4]."""
    centres = torch.arange(2.0, 32.0, 4.0)
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")
    out = [torch.stack([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2], -1).reshape(-1, 4) for s in (8.0, 16.0)]
    return torch.cat(out)


@pytest.mark.parametrize("threshold", [0.7, 0.5])  # the RPN's foreground threshold, RetinaNet's
def test_iou_leaves_the_tiny_box_below_the_threshold_and_nwd_does_not(threshold):
    assert box_iou(TINY["boxes"], anchors()).max() < threshold
    assert (nwd(TINY["boxes"], anchors()) >= threshold).sum() >= 2


def rpn_positives(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    rpn = RPN(AnchorGenerator(((8.0,),), ((1.0,),)), RPNHead(4, 1),
              RPNSettings(box_similarity=box_similarity(name)))
    labels, _ = rpn.assign_targets_to_anchors([anchors()], [dict(TINY)])
    quality = rpn.box_similarity(TINY["boxes"], anchors())[0]
    return labels[0] == 1, quality


def test_the_rpn_gives_the_tiny_box_positives_above_its_threshold_under_nwd():
    positive, quality = rpn_positives("iou")
    assert positive.any() and (quality[positive] < 0.7).all()  # only torchvision's low-quality match
    positive, quality = rpn_positives("nwd")
    assert (quality[positive] >= 0.7).sum() >= 2


def test_the_roi_heads_match_by_the_chosen_measure():
    proposals = anchors()
    found = {}
    for name in ("iou", "nwd"):
        torch.manual_seed(0)
        model = build_detector(backbone="resnet18", num_classes=3, out_channels=16, trainable_layers=5,
                               box_similarity=name)
        _, labels = model.roi_heads.assign_targets_to_proposals([proposals], [TINY["boxes"]], [TINY["labels"]])
        found[name] = labels[0]
    assert (found["iou"] == 1).sum() == 0  # fg 0.5: no proposal is a positive by IoU
    assert (found["nwd"] == 1).sum() >= 2


def test_retinanet_gives_the_tiny_box_positives_above_its_threshold_under_nwd():
    counts = {}
    for name in ("iou", "nwd"):
        torch.manual_seed(0)
        model = build_detector(detector="retinanet", backbone="resnet18", num_classes=3, out_channels=16,
                               trainable_layers=5, box_similarity=name)
        seen: list[torch.Tensor] = []
        model.head.compute_loss = lambda targets, outputs, anchors_, matched, seen=seen: seen.extend(matched) or {}
        model.compute_loss([dict(TINY)], {}, [anchors()])
        quality = model.box_similarity(TINY["boxes"], anchors())[0]
        counts[name] = int(((seen[0] >= 0) & (quality >= 0.5)).sum())
    assert counts["iou"] == 0 and counts["nwd"] >= 2
