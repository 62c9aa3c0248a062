"""The one place a config becomes a model: :func:`build_model`, which the trainer and the loader of
trained models (:func:`mrae.engine.trained.load_trained`: eval, predict, the demo, the study,
export) use; and :func:`load_weights_strict`, the one way weights go into it (resume,
``--init-from``, a trained model).

This module reads no weights file itself and never runs a pretraining: a trunk's starting weights
come resolved from the caller (:func:`mrae.engine.pretrain.resolve_pretrained`, which the trainer
calls once per run), so loading a trained model never passes through the pretraining code.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import nn

from mrae.errors import ConfigError


def build_model(cfg: DictConfig, *, pretrained: str | None = None, num_classes: int | None = None) -> nn.Module:
    """The detector of ``cfg.model`` (:func:`mrae.modeling.detector.build_detector` with its keys).

    Args:
        cfg: a checked config (:func:`mrae.engine.config.load_config`).
        pretrained: the trunk's starting weights, read now: ``model.pretrained`` as
            :func:`mrae.engine.pretrain.resolve_pretrained` returns it (``imagenet``, a file; a
            ``synthetic`` or ``dataset`` trunk is its cached file). None: nothing is read, the
            weights come from a checkpoint next (resume, ``--init-from``, a trained model), so the
            structure of ``model.pretrained`` is built (frozen batch norm, its trainable layers);
            with ``model.pretrained: null`` the two are the same.
        num_classes: overrides ``model.num_classes`` (which may be null before the data is read).

    Raises:
        ConfigError: ``model.num_classes`` is null and not given.
    """
    from mrae.engine.config import to_dict
    from mrae.modeling.detector import build_detector

    kwargs = to_dict(cfg.model)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if kwargs["num_classes"] is None:
        raise ConfigError("model.num_classes is null in the config; it cannot be built: set it "
                          "(object classes + 1) or build from a run's checkpoint")
    if pretrained is None:
        kwargs["weights_later"] = True  # model.pretrained stays: the structure of its weights
    else:
        kwargs["pretrained"] = pretrained
    return build_detector(**kwargs)


def load_weights_strict(model: nn.Module, weights: dict[str, Any], source: str, target: str,
                        advice: str = "") -> None:
    """``model.load_state_dict(weights, strict=True)``; a mismatch is a one-line ConfigError:
    ``"<source>: its weights do not fit <target> (<torch's first line>); <advice>"``."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        tail = f"; {advice}" if advice else ""
        raise ConfigError(
            f"{source}: its weights do not fit {target} ({str(error).splitlines()[0]}){tail}"
        ) from None
