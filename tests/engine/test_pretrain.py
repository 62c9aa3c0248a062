"""The proxy pretraining: a tiny run writes a ResNet state dict that the detector loads as it
loads ImageNet weights (frozen batch norm), cached by its settings and never trained twice."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from mrae.cli import main as cli
from mrae.engine.config import load_config
from mrae.engine.pretrain import cache_path, report_file, resolve_pretrained
from mrae.errors import ConfigError
from mrae.modeling.backbone import ResNetLevels

TINY = [
    "pretrain.scenes=3", "pretrain.val_scenes=1", "pretrain.crop_size=32", "pretrain.steps=3",
    "pretrain.batch_size=8",
]


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  pretrained: synthetic\n")
    torch.set_num_threads(1)
    return path, [*TINY, f"pretrain.cache_dir={tmp_path / 'cache'}"]


def test_pretrained_trunk_is_cached_and_loads_with_frozen_batch_norm(config):
    path, overrides = config
    cfg = load_config(path, overrides)
    weights = resolve_pretrained(cfg, progress=False)
    assert weights == str(cache_path(cfg))
    report = json.loads(report_file(cache_path(cfg)).read_text())
    assert report["settings"]["steps"] == 3 and 0.0 <= report["val_accuracy"] <= 1.0
    assert len(report["val_accuracy_per_class"]) == 8
    state = torch.load(weights, weights_only=True)
    trunk = ResNetLevels("resnet18", pretrained=weights, trainable_layers=3)
    assert isinstance(trunk.bn1, FrozenBatchNorm2d)
    assert torch.equal(trunk.conv1.weight, state["conv1.weight"])
    assert torch.equal(trunk.bn1.running_mean, state["bn1.running_mean"])
    # cached: a second call returns the same file without training again
    mtime = cache_path(cfg).stat().st_mtime_ns
    assert resolve_pretrained(cfg, progress=False) == weights
    assert cache_path(cfg).stat().st_mtime_ns == mtime
    # other settings, another file
    other = load_config(path, [*overrides, "pretrain.steps=4"])
    assert cache_path(other) != cache_path(cfg)


def test_other_pretrained_values_pass_through(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  pretrained: null\n")
    assert resolve_pretrained(load_config(path), progress=False) is None


def test_bad_pretrain_settings_are_refused(config):
    path, overrides = config
    with pytest.raises(ConfigError, match="pretrain.lr"):
        load_config(path, [*overrides, "pretrain.lr=.inf"])
    with pytest.raises(ConfigError, match="pretrain.crop_size"):
        load_config(path, [*overrides, "pretrain.crop_size=8"])


def test_cli_out_refuses_to_overwrite(config, tmp_path, capsys):
    path, overrides = config
    out = tmp_path / "mine.pth"
    out.write_bytes(b"keep me")
    assert cli(["pretrain", "--config", str(path), "--out", str(out), *overrides]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
