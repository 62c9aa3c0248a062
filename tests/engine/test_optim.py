"""train.optimizer and train.weight_decay_norm_and_bias: the optimizer and its parameter groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrae.engine.config import load_config
from mrae.engine.optim import build_optimizer, check_same_optimizer, param_groups
from mrae.errors import ConfigError


def small_model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.Conv2d(4, 4, 1),
                          nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))  # materialize the lazy layer
    model[3].requires_grad_(False)  # a frozen layer is in no group
    return model


def names(model: nn.Module, group: dict) -> list[str]:
    ids = {id(p) for p in group["params"]}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def test_no_decay_on_normalization_parameters_and_biases_by_default():
    model = small_model()
    decay, no_decay = param_groups(model, decay_norm_and_bias=False)
    assert names(model, decay) == ["0.weight", "5.weight"]
    assert names(model, no_decay) == ["0.bias", "1.weight", "1.bias", "2.weight", "2.bias", "5.bias"]
    assert "weight_decay" not in decay and no_decay["weight_decay"] == 0.0


def test_decay_on_every_parameter_when_asked_is_one_group_in_the_models_order():
    model = small_model()
    (group,) = param_groups(model, decay_norm_and_bias=True)
    assert group == {"params": [p for p in model.parameters() if p.requires_grad]}


def test_the_detectors_norms_and_biases_get_no_decay():
    from mrae.modeling.detector import build_detector

    model = build_detector(extractor="single", backbone="resnet18", out_channels=16, num_classes=3)
    cfg = load_config("configs/synth/mrae_t2.yaml", ["train.weight_decay_norm_and_bias=false"]).train
    decay, no_decay = build_optimizer(model, cfg).param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert all(n.endswith("weight") and ".bn" not in n for n in names(model, decay))
    assert "backbone.body.bn1.weight" in names(model, no_decay)
    assert "roi_heads.box_head.fc6.bias" in names(model, no_decay)


def test_the_optimizer_follows_the_config():
    model = small_model()
    cfg = load_config("configs/synth/mrae_t2.yaml")
    assert cfg.train.optimizer == "sgd" and cfg.train.weight_decay_norm_and_bias  # the study's recipe
    sgd = build_optimizer(model, cfg.train)
    assert type(sgd) is torch.optim.SGD and len(sgd.param_groups) == 1
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["weight_decay"] == 1e-4
    cfg = load_config("configs/synth/mrae_t2.yaml", ["train.optimizer=adamw", "train.lr=1e-4",
                                                     "train.weight_decay_norm_and_bias=false"])
    adamw = build_optimizer(model, cfg.train)
    assert type(adamw) is torch.optim.AdamW and len(adamw.param_groups) == 2
    assert adamw.param_groups[0]["lr"] == 1e-4


def test_the_library_default_is_sgd_without_decay_on_norms_and_biases(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\n")
    train = load_config(path).train
    assert train.optimizer == "sgd" and train.weight_decay_norm_and_bias is False


def test_an_unknown_optimizer_is_a_one_line_error():
    with pytest.raises(ConfigError) as error:
        load_config("configs/synth/mrae_t2.yaml", ["train.optimizer=adam"])
    message = str(error.value)
    assert "\n" not in message and "train.optimizer='adam'" in message and "sgd, adamw" in message


def test_a_run_resumes_only_with_the_optimizer_it_was_trained_with():
    now = {"optimizer": "sgd", "weight_decay_norm_and_bias": False}
    with pytest.raises(ConfigError, match=r"trained with train.weight_decay_norm_and_bias=true, this "
                                          r"config has false"):
        check_same_optimizer({"train": {}}, now, "--resume x")  # a checkpoint from before the keys
    with pytest.raises(ConfigError, match="train.optimizer=sgd, this config has adamw"):
        check_same_optimizer({"train": now}, {**now, "optimizer": "adamw"}, "--resume x")
    check_same_optimizer({"train": now}, now, "--resume x")
    check_same_optimizer({}, {"optimizer": "sgd", "weight_decay_norm_and_bias": True}, "--resume x")
