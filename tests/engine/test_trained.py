"""Loading a trained model: one read of the checkpoint gives the model, its config, classes and
label map; a model whose weights, config or label map do not fit is one line; a trunk's pretrained
weights are never read (that loading never reaches the pretraining code: tests/test_layers.py)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

import mrae.engine.trained
from mrae.engine.checkpoint import save_checkpoint
from mrae.engine.config import load_config, to_dict
from mrae.engine.model import build_model
from mrae.engine.trained import TrainedModel, load_trained
from mrae.errors import ConfigError

MODEL = ("model:\n  extractor: single\n  level: 2\n  backbone: resnet18\n  out_channels: 16\n"
         "  num_classes: 3\n  min_size: 96\n  max_size: 128\n")


@pytest.fixture
def trained(tmp_path):
    """A checkpoint of a random tiny detector, as `mrae train` writes it, and its state."""
    config = tmp_path / "c.yaml"
    config.write_text(MODEL)
    cfg = load_config(config)
    torch.manual_seed(0)
    state = {"model": build_model(cfg).state_dict(), "config": to_dict(cfg), "class_names": ["a", "b"],
             "label_to_cat": {1: 5, 2: 9}}
    save_checkpoint(tmp_path / "last.pth", state)
    return tmp_path / "last.pth", state


def test_one_read_gives_the_model_its_config_classes_and_label_map(trained, monkeypatch):
    path, state = trained
    reads = []
    real = mrae.engine.trained.load_checkpoint
    monkeypatch.setattr(mrae.engine.trained, "load_checkpoint", lambda p: reads.append(p) or real(p))
    loaded = load_trained(path)
    assert isinstance(loaded, TrainedModel) and reads == [path]
    model, cfg, names, label_to_cat = loaded
    assert names == ["a", "b"] and label_to_cat == {1: 5, 2: 9} and not model.training
    assert cfg.model.level == 2 and cfg.model.num_classes == 3
    for key, value in state["model"].items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_loader_builds_through_build_model_reading_nothing_but_the_file(trained, monkeypatch):
    """The one place a config becomes a model (mrae.engine.model.build_model), as the trainer
    builds it, with no pretrained weights read (they are the checkpoint's)."""
    path, _ = trained
    calls = []
    real = mrae.engine.trained.build_model
    monkeypatch.setattr(mrae.engine.trained, "build_model", lambda *a, **k: calls.append(k) or real(*a, **k))
    load_trained(path)
    assert calls == [{}]


def test_a_checkpoint_without_a_label_map_says_none(trained, tmp_path):
    _, state = trained
    save_checkpoint(tmp_path / "old.pth", {k: v for k, v in state.items() if k != "label_to_cat"})
    assert load_trained(tmp_path / "old.pth").label_to_cat is None


@pytest.mark.parametrize("mapping", [{"a": "b"}, {1: 5}, {1: 5, 2: 9, 3: 11}, {0: 5, 1: 9}])
def test_a_label_map_that_is_not_one_of_the_labels_is_one_line(trained, tmp_path, mapping):
    _, state = trained
    save_checkpoint(tmp_path / "g.pth", {**state, "label_to_cat": mapping})
    with pytest.raises(ConfigError, match=r"g\.pth: its label_to_cat is not a map of the labels 1\.\.2 ") as error:
        load_trained(tmp_path / "g.pth")
    assert "\n" not in str(error.value)


def test_weights_that_do_not_fit_the_config_are_one_line(trained, tmp_path):
    _, state = trained
    config = dict(state["config"], model={**state["config"]["model"], "level": 3})
    save_checkpoint(tmp_path / "bad.pth", {**state, "config": config})
    with pytest.raises(ConfigError, match=r"bad\.pth: its weights do not fit the model of its config"):
        load_trained(tmp_path / "bad.pth")


def test_the_trunk_is_built_as_its_pretrained_weights_but_nothing_is_read(tmp_path):
    """model.pretrained: imagenet (no network here) and a file that is gone: the structure of
    trained weights (frozen batch norm), the weights the checkpoint's own."""
    for pretrained in ("imagenet", str(tmp_path / "gone.pth")):
        config = tmp_path / "c.yaml"
        config.write_text(MODEL + f"  pretrained: {pretrained}\n")
        cfg = load_config(config)
        torch.manual_seed(0)
        model = build_model(cfg)  # nothing read: the weights come next
        assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
        save_checkpoint(tmp_path / "last.pth", {"model": model.state_dict(), "config": to_dict(cfg)})
        loaded = load_trained(tmp_path / "last.pth")
        assert any(isinstance(m, FrozenBatchNorm2d) for m in loaded.model.modules())
        assert loaded.class_names == [] and loaded.label_to_cat is None

