"""The one place a config becomes a model: :func:`build_model`, which the trainer and every loader
(:func:`mrae.engine.checkpoint.load_model`: eval, predict, the demo, the study, export) use."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from mrae.errors import ConfigError


def build_model(cfg: DictConfig, *, weights_later: bool = True, num_classes: int | None = None) -> nn.Module:
    """The detector of ``cfg.model`` (:func:`mrae.modeling.detector.build_detector` with its keys).

    Args:
        cfg: a checked config (:func:`mrae.engine.config.load_config`).
        weights_later: the weights come from a checkpoint next (resume, ``--init-from``, loading a
            trained model): build the structure of ``model.pretrained`` (frozen batch norm, its
            trainable layers) without reading or downloading it. False: read it (a ``synthetic``
            trunk is resolved to its cached file, :func:`mrae.engine.pretrain.resolve_pretrained`).
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
    if weights_later:
        kwargs["weights_later"] = True
    else:
        from mrae.engine.pretrain import resolve_pretrained

        kwargs["pretrained"] = resolve_pretrained(cfg, progress=False)
    return build_detector(**kwargs)
