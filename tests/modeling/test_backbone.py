"""ResNetLevels: level shapes and widths per depth, trainable stages, local weights files."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision import models
from torchvision.ops.misc import FrozenBatchNorm2d

from mrae.errors import ConfigError
from mrae.modeling.backbone import RESNET_DEPTHS, ResNetLevels

WIDTHS = {
    "resnet18": {"c1": 64, "c2": 128, "c3": 256},
    "resnet34": {"c1": 64, "c2": 128, "c3": 256},
    "resnet50": {"c1": 256, "c2": 512, "c3": 1024},
    "resnet101": {"c1": 256, "c2": 512, "c3": 1024},
}


@pytest.mark.parametrize("depth", list(RESNET_DEPTHS))
def test_levels_have_strides_4_8_16_and_the_documented_widths(depth):
    torch.manual_seed(0)
    body = ResNetLevels(depth).eval()
    assert body.channels == WIDTHS[depth]
    assert body.layer4_channels == (512 if depth in ("resnet18", "resnet34") else 2048)
    with torch.no_grad():
        levels = body(torch.rand(1, 3, 97, 131))
    h, w = 97, 131
    for k, stride in zip(("c1", "c2", "c3"), (4, 8, 16), strict=True):
        assert levels[k].shape == (1, WIDTHS[depth][k], math.ceil(h / stride), math.ceil(w / stride))
    # from scratch, batch norm learns (torchvision's rule); trained weights freeze it
    norms = [m for m in body.modules() if "Norm" in type(m).__name__]
    assert norms and all(type(m) is torch.nn.BatchNorm2d for m in norms)


@pytest.mark.parametrize(("trainable", "stages"), [(0, set()), (3, {"layer2", "layer3", "layer4"}),
                                                   (5, {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"})])
def test_trainable_layers_follow_torchvision(trainable, stages):
    body = ResNetLevels("resnet18", trainable_layers=trainable)
    trained = {n.split(".")[0] for n, p in body.named_parameters() if p.requires_grad}
    assert trained == stages


def test_local_weights_file_is_loaded(tmp_path):
    torch.manual_seed(1)
    reference = models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    body = ResNetLevels("resnet18", pretrained=path)
    assert all(isinstance(m, FrozenBatchNorm2d) for m in body.modules() if "Norm" in type(m).__name__)
    assert torch.equal(body.layer2[0].conv1.weight, reference.layer2[0].conv1.weight)
    assert torch.equal(body.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_missing_corrupt_or_foreign_weights_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match="nope.pth.*no such weights file"):
        ResNetLevels("resnet18", pretrained=missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="corrupt.pth.*cannot read"):
        ResNetLevels("resnet18", pretrained=str(corrupt))
    foreign = tmp_path / "r18.pth"
    torch.save(models.resnet18().state_dict(), foreign)
    with pytest.raises(ConfigError, match="r18.pth.*resnet50"):
        ResNetLevels("resnet50", pretrained=foreign)


@pytest.mark.parametrize(("kwargs", "text"), [(dict(depth="resnet77"), "'resnet18'"),
                                              (dict(trainable_layers=6), "0..5")])
def test_bad_backbone_settings(kwargs, text):
    with pytest.raises(ConfigError, match=text):
        ResNetLevels(**kwargs)


def test_from_scratch_every_stage_trains_by_default():
    scratch = ResNetLevels("resnet18", pretrained=None)
    assert scratch.trainable_layers == 5
    assert all(p.requires_grad for p in scratch.parameters() if p is not None)
