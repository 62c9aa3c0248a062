"""FCOS's box coding: ``exp`` (the FCOS paper's) brings boxes forced below zero back;
``relu`` (torchvision's) leaves them dead, as FCOS MRAE template 2 seed 1 of the host study died."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.fcos import FCOSRegressionHead

from mrae.errors import ConfigError
from mrae.modeling.detector import build_detector
from mrae.modeling.hosts.fcos_box_coding import CodedFCOSRegressionHead, check_box_coding
from mrae.modeling.hosts.norms import group_norm

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = dict(backbone="resnet18", num_classes=3, min_size=64, max_size=96, out_channels=16,
            trainable_layers=5, extractor="mrae", template=2, detector="fcos")
IMAGE = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0))
BOX = {"boxes": torch.tensor([[20.0, 16.0, 36.0, 32.0]]), "labels": torch.tensor([1])}


def train_forced_below_zero(box_coding: str, steps: int) -> tuple[list[float], list[float]]:
    """The box loss and the box conv's gradient norm at each of ``steps`` SGD steps (the recipe's
    lr 0.02, momentum 0.9) of a tiny FCOS whose raw box outputs all start at -1."""
    torch.manual_seed(0)
    model = build_detector(**TINY, box_coding=box_coding).train()
    box_conv = model.head.regression_head.bbox_reg
    torch.nn.init.zeros_(box_conv.weight)
    torch.nn.init.constant_(box_conv.bias, -1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    box_losses, gradients = [], []
    for _ in range(steps):
        losses = model([IMAGE], [dict(BOX)])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        box_losses.append(float(losses["bbox_regression"].detach()))
        gradients.append(float(box_conv.weight.grad.norm() + box_conv.bias.grad.norm()))
        optimizer.step()
    return box_losses, gradients


def test_outputs_forced_below_zero_recover_under_exp():
    box_losses, gradients = train_forced_below_zero("exp", 15)
    assert all(g > 0 for g in gradients)
    assert box_losses[0] < 1.0 and min(box_losses) < 0.8 * box_losses[0]


def test_outputs_forced_below_zero_stay_dead_under_relu():
    box_losses, gradients = train_forced_below_zero("relu", 15)
    assert gradients == [0.0] * 15
    assert box_losses == [1.0] * 15  # GIoU of boxes that are points: the dead seed's 1.000


def test_exp_has_one_scale_per_map():
    torch.manual_seed(0)
    head = build_detector(**TINY, box_coding="exp").head.regression_head
    assert head.box_coding == "exp" and head.scales.tolist() == [1.0]
    torch.manual_seed(0)
    pyramid = build_detector(**{**TINY, "extractor": "fpn", "template": 2}, box_coding="exp").head.regression_head
    assert pyramid.scales.shape == (4,)


def test_each_map_has_its_own_scale():
    torch.manual_seed(0)
    head = CodedFCOSRegressionHead(16, 1, 2, "exp", norm_layer=group_norm)
    maps = [torch.randn(1, 16, 4, 6), torch.randn(1, 16, 2, 3)]
    with torch.no_grad():
        head.scales.copy_(torch.tensor([1.0, 2.0]))
        raw = [head.bbox_reg(head.conv(m)) for m in maps]
        boxes, _ = head(maps)
    assert torch.allclose(boxes[0, :24], raw[0].permute(0, 2, 3, 1).reshape(-1, 4).exp())
    assert torch.allclose(boxes[0, 24:], (2 * raw[1]).permute(0, 2, 3, 1).reshape(-1, 4).exp())


def test_relu_is_torchvisions_head_key_for_key_and_bit_for_bit():
    torch.manual_seed(0)
    ours = CodedFCOSRegressionHead(16, 1, 1, "relu", norm_layer=group_norm)
    theirs = FCOSRegressionHead(16, 1, norm_layer=group_norm)
    theirs.load_state_dict(ours.state_dict())  # strict: the same keys
    maps = [torch.randn(2, 16, 5, 7)]
    assert all(torch.equal(a, b) for a, b in zip(ours(maps), theirs(maps), strict=True))


@pytest.mark.parametrize("bad", ["softplus", "", None, 1])
def test_an_unknown_box_coding_is_one_line_naming_key_and_choices(bad):
    with pytest.raises(ConfigError) as caught:
        check_box_coding(bad)
    message = str(caught.value)
    assert "\n" not in message and "box_coding" in message and "'exp'" in message and "'relu'" in message
