"""The optimizer of ``train.optimizer``: SGD with momentum (the paper's) or AdamW.

Weight decay applies to the weights of convolutions and linear layers; the parameters of
normalization layers and every bias get none unless ``train.weight_decay_norm_and_bias`` is true
(detectron2's default; decaying them pulls batch norm's scales and the biases toward zero for no
regularising gain). The synthetic recipe, ``configs/synth/_base.yaml``, sets it to true: its study
and demo numbers were measured with decay on every parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mrae.choices import OPTIMIZERS
from mrae.errors import ConfigError

#: The layers whose parameters are normalization parameters (batch, instance, group, layer norm).
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
)


def param_groups(model: nn.Module, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """The model's trainable parameters as optimizer groups, in the model's order.

    Returns:
        ``[{"params": all}]`` when ``decay_norm_and_bias`` (every parameter decays by the
        optimizer's ``weight_decay``); else ``[{"params": the others}, {"params": normalization
        parameters and biases, "weight_decay": 0.0}]`` (an empty group left out).
    """
    if decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if isinstance(module, NORM_LAYERS) or name == "bias" else decay).append(param)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(model: nn.Module, train: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``train.optimizer`` over the model's trainable parameters, with the config's ``lr``,
    ``weight_decay`` (see :func:`param_groups`) and, for SGD, ``momentum``; AdamW keeps torch's
    betas (0.9, 0.999)."""
    groups = param_groups(model, train["weight_decay_norm_and_bias"])
    name = train["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=train["lr"], momentum=train["momentum"],
                               weight_decay=train["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=train["lr"], weight_decay=train["weight_decay"])
    raise ConfigError(f"train.optimizer={name!r} is not valid; choose one of {', '.join(OPTIMIZERS)}")


def check_same_optimizer(saved: Mapping[str, Any], train: Mapping[str, Any], where: str) -> None:
    """Refuse to resume a run with another optimizer or other parameter groups than it was
    trained with (its state would not fit). ``saved`` is the checkpoint's config; one written
    before these keys existed was trained with SGD and decay on every parameter."""
    before = saved.get("train") or {}
    for key, default in (("optimizer", "sgd"), ("weight_decay_norm_and_bias", True)):
        old, new = before.get(key, default), train[key]
        if old != new:
            raise ConfigError(
                f"{where}: the run was trained with train.{key}={_yaml(old)}, this config has "
                f"{_yaml(new)}; resume with the run's own setting (train.{key}={_yaml(old)})"
            )


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
