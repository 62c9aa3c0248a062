"""A trained model from its file, read and verified once: a checkpoint of ``mrae train`` or an
``.onnx`` file of ``mrae export``.

:func:`load_trained` is what eval, predict, export, the demo, the study and the benchmarks call.
It builds the model through :func:`mrae.engine.model.build_model` with nothing read but the file
(a trunk's pretrained weights are the checkpoint's own), so it never reaches the pretraining
code (:mod:`mrae.engine.pretrain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig
from torch import nn

from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.config import config_from_dict, synthetic_dir
from mrae.engine.model import build_model, load_weights_strict
from mrae.errors import ConfigError


class TrainedModel(NamedTuple):
    """What :func:`load_trained` returns."""

    model: nn.Module  #: in eval mode, on the device asked for (an ``.onnx`` file: on the CPU)
    config: DictConfig  #: the run's resolved config (``model.num_classes`` filled in)
    class_names: list[str]  #: label ``k`` is ``class_names[k - 1]``
    #: label -> COCO category id, for the labels ``1..len(class_names)``; None: the file has none
    label_to_cat: dict[int, int] | None


def load_trained(path: str | PathLike[str], device: str | torch.device = "cpu") -> TrainedModel:
    """The trained detector of a checkpoint (:func:`mrae.engine.checkpoint.load_checkpoint`: read
    once, its checksum verified) with its config, classes and label map.

    An ``.onnx`` file of ``mrae export`` loads as an :class:`~mrae.modeling.onnx_detector.OnnxDetector`
    (onnxruntime on the CPU, whatever ``device``) with the config, classes and label map stored in
    its metadata.

    Raises:
        ConfigError: the file cannot be read or verified (:func:`~mrae.engine.checkpoint.load_checkpoint`),
            its config is not valid, its weights do not fit the model of its config, or its
            ``label_to_cat`` is not a map of the labels ``1..len(class_names)`` to category ids.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"], source=f"{path} (its config)")
    if cfg.model.num_classes is None:
        raise ConfigError("model.num_classes is null in the checkpoint's config; it cannot be rebuilt")
    model = build_model(cfg)
    load_weights_strict(model, state["model"], f"{path}", "the model of its config")
    model.to(device).eval()
    class_names = list(state.get("class_names") or [])
    return TrainedModel(model, cfg, class_names, _label_map(state.get("label_to_cat"), len(class_names), path))


def data_paths(cfg: DictConfig) -> list[Path]:
    """The dataset paths a trained model's config names that exist here: its training and
    validation images folders and annotation files, or the synthetic dataset's folder. Outputs
    of predict and export never go inside them (:func:`mrae.ownership.check_not_input`)."""
    d = cfg.data
    if d.get("train_images") is None:
        try:
            found = [synthetic_dir(cfg)]
        except (AttributeError, KeyError, TypeError):  # a stored config without the section
            found = []
    else:
        found = [Path(d[k]) for k in ("train_images", "train_annotations", "val_images", "val_annotations")
                 if d.get(k) is not None]
    return [p for p in found if p.exists()]


def _load_onnx(path: Path) -> TrainedModel:
    from mrae.modeling.onnx_detector import OnnxDetector
    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY, LABEL_TO_CAT_KEY

    model = OnnxDetector(path)  # its inputs and outputs checked against what mrae export writes
    config = model.metadata_json(CONFIG_KEY, dict)
    if config is None:
        raise ConfigError(f"{path}: no mrae config in the ONNX model's metadata; export it with mrae export")
    cfg = config_from_dict(config, source=f"{path} (its config)")
    names = model.metadata_json(CLASSES_KEY, list)
    if names is None or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: its metadata {CLASSES_KEY} is not a list of class names; export "
                          "the model again with mrae export")
    class_names = list(names)
    if class_names and cfg.model.num_classes is not None and cfg.model.num_classes != len(class_names) + 1:
        raise ConfigError(f"{path}: its config has model.num_classes {cfg.model.num_classes} for "
                          f"{len(class_names)} class names; export the model again with mrae export")
    model.detections_per_img = int(cfg.model.detections_per_img)  # the cap sliced inference reads
    model.num_labels = len(class_names) or None
    mapping = _label_map(model.metadata_json(LABEL_TO_CAT_KEY, dict), len(class_names), path)
    return TrainedModel(model.eval(), cfg, class_names, mapping)


def _label_map(mapping: Any, labels: int, path: Path) -> dict[int, int] | None:
    """``{label: category id}`` with ``int`` keys and values (JSON metadata has string keys); None
    for none stored; a ConfigError when it does not map exactly the labels ``1..labels``."""
    if not mapping:
        return None
    try:
        result = {int(k): int(v) for k, v in mapping.items()} if isinstance(mapping, Mapping) else None
    except (TypeError, ValueError, OverflowError):
        result = None
    if result is None or set(result) != set(range(1, labels + 1)):
        raise ConfigError(f"{path}: its label_to_cat is not a map of the labels 1..{labels} "
                          "to COCO category ids; use a checkpoint written by mrae train")
    return result
