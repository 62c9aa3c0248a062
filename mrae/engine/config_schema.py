"""The config's schema: the typed sections and their defaults (what a YAML file may set).

A YAML file lists only what differs from these defaults; :mod:`mrae.engine.config` reads it and
:mod:`mrae.engine.config_checks` checks what the types cannot. The ``model`` section is derived
from the settings the extractors and hosts declare (:mod:`mrae.modeling.registry`), never written
here.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from mrae.modeling import registry
from mrae.modeling.backbone_settings import BackboneSettings
from mrae.modeling.host_settings import HostSettings
from mrae.modeling.settings import config_type, declared


def model_config_class() -> type:
    """The ``model`` section's dataclass, derived from :mod:`mrae.modeling.registry`.

    Flat: ``detector``, ``extractor``, the backbone's keys, every extractor's keys and the keys
    every host reads; then one sub-section per host (``faster_rcnn``, ``retinanet``, ``fcos``)
    with the keys only that host reads. Built anew when the registry changes."""
    key = tuple((n, e.settings) for n, e in registry.HOSTS.items()) + \
        tuple((n, e.settings) for n, e in registry.EXTRACTORS.items())
    return _model_config_class(key)


@functools.lru_cache(maxsize=8)
def _model_config_class(_key: tuple) -> type:
    registry.check_registry()
    fields: list[tuple[str, Any, Any]] = [
        ("detector", str, field(default=next(iter(registry.HOSTS)))),
        ("extractor", str, field(default="mrae")),
    ]
    owners = [(registry.backbone_fields(), _backbone_owner), (registry.extractor_fields(), _extractor_owner),
              (registry.common_host_fields(), _common_host_owner)]
    for found, owner in owners:
        for name, f in found.items():
            fields.append((name, config_type(owner(name), name), _config_field(f.default)))
    for host in registry.HOSTS:
        section = _section_class(host, registry.HOSTS[host].settings)
        fields.append((host, section, field(default_factory=section)))
    return dataclasses.make_dataclass("ModelConfig", fields, namespace={"__doc__": (
        "The config's ``model`` section: build_detector's settings, derived from the registry "
        "(mrae.modeling.registry); each host's own keys in its sub-section.")})


def _backbone_owner(name: str) -> type:
    return BackboneSettings


def _extractor_owner(name: str) -> type:
    return next(e.settings for e in registry.EXTRACTORS.values() if name in declared(e.settings))


def _common_host_owner(name: str) -> type:
    return HostSettings


def _section_class(host: str, settings: type) -> type:
    fields = [(name, config_type(settings, name), _config_field(f.default))
              for name, f in registry.host_section_fields(host).items()]
    title = "".join(part.title() for part in host.split("_"))
    return dataclasses.make_dataclass(f"{title}Section", fields, namespace={"__doc__": (
        f"``model.{host}``: the settings only {host} reads ({settings.__name__})")})


def _config_field(default: Any) -> Any:
    if isinstance(default, tuple):
        return field(default_factory=lambda d=default: list(d))
    return field(default=default)


@dataclass
class SyntheticConfig:
    """The synthetic dataset (:func:`mrae.data.synth.generate`), used when the data paths are null."""

    train_images: int = 800
    val_images: int = 200
    seed: int = 0
    width: int = 512
    height: int = 300
    cache_dir: str = ".cache/synth"  # generated once into cache_dir/<key>, reused after


@dataclass
class DataConfig:
    """COCO-format data: images folders and instances JSON files (paths relative to the cwd)."""

    train_images: str | None = None
    train_annotations: str | None = None
    val_images: str | None = None
    val_annotations: str | None = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    workers: int = 2  # data loader processes (0: load in the training process)
    flip: bool = True  # horizontal flip (p = 0.5) of the training images
    # random crops [h, w] in model-input pixels for training (objects keep their scale; the
    # evaluation sees full images); null: full images. See mrae.data.augment.
    train_crop: list[int] | None = None
    # the crops' scale: image (the full image's resize factor) or tile (sliced training: train_crop
    # px of the original image, resized as sliced inference resizes a tile). See docs/slicing.md.
    crop_scale: str = "image"
    # a box cut by a crop is kept (clipped) when at least this share of its area, in (0, 1], is
    # inside, and the visible part of a box with less inside becomes an ignore box (neither object
    # nor background); null: boxes under half inside are dropped (become background).
    crop_min_visible: float | None = None


@dataclass
class TrainConfig:
    """An iteration-based schedule: SGD with momentum (or AdamW), piecewise-constant lr at milestones."""

    steps: int = 1000  # optimiser steps (iterations), each of batch_size images per process
    batch_size: int = 2
    lr: float = 0.02
    optimizer: str = "sgd"  # sgd (with momentum, the paper's) | adamw (give it its own lr; no momentum)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm_and_bias: bool = False  # true: decay normalization weights and biases too
    milestones: list[int] = field(default_factory=list)  # steps where lr is multiplied by gamma
    gamma: float = 0.1
    warmup_steps: int = 0  # linear warm-up from warmup_factor * lr to lr
    warmup_factor: float = 0.001
    clip_grad_norm: float | None = None  # max total gradient L2 norm; null: no clipping
    amp: bool = True  # mixed precision (float16 autocast + GradScaler), used on CUDA only
    seed: int = 0
    eval_every: int = 0  # evaluate on the val set every N steps (0: only after the last step)
    checkpoint_every: int = 500  # write a checkpoint every N steps (0: only after the last step)
    keep_last: int = 2  # step_<7-digit step>.pth checkpoints kept (plus last.pth and best.pth)
    log_every: int = 10  # log the mean losses over the last N steps
    best_metric: str = "AP"  # the eval metric (higher is better) that picks best.pth
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class EvalConfig:
    """Evaluation on the val set during training and by ``mrae eval``."""

    max_images: int | None = None  # evaluate only the first N val images (null: all)
    # the evaluations during training before the last step (the learning curve) on only the first
    # N val images (null: as max_images); the last, and best.pth, on max_images
    curve_max_images: int | None = None
    # the detections per image COCOeval counts, increasing, the last at most model.detections_per_img:
    # AP at the last; COCO's [1, 10, 100], AI-TOD's [1, 100, 1500] (mrae.evaluation.coco_metrics)
    max_dets: list[int] = field(default_factory=lambda: [1, 10, 100])
    # AP per condition: "[FIELD:]REGEX" with named groups on the val images' file names (or FIELD
    # of their records), e.g. "^(?P<light>[01])_(?P<altitude>\d+)_" (mrae.evaluation.groups)
    group_by: str | None = None


@dataclass
class PretrainConfig:
    """The offline pretraining (:mod:`mrae.engine.pretrain`) run when ``model.pretrained`` is
    ``synthetic`` (crops of synthetic scenes) or ``dataset`` (crops of ``annotations``' boxes)."""

    # a COCO instances JSON and its images folder whose labelled boxes (and background) give the
    # crops of model.pretrained: dataset (mrae.data.dataset_crops); null: the synthetic scenes
    annotations: str | None = None
    images: str | None = None
    # synthetic scenes the training crops are cut from (split id 2: no dataset's); with
    # annotations: at most this many of its images (after the held-out ones, in a seeded order)
    scenes: int = 800
    val_scenes: int = 100  # further scenes (with annotations: its images) for the held-out accuracy
    seed: int = 0
    crop_size: int = 32  # px, square, native resolution
    background_per_image: int = 3  # background crops per scene (besides one per object/distractor)
    steps: int = 1000
    batch_size: int = 128
    lr: float = 0.1  # SGD (momentum 0.9, Nesterov), linear warm-up then cosine to 0
    weight_decay: float = 5e-4  # on conv and linear weights only
    cache_dir: str = ".cache/pretrain"  # trained once into cache_dir/<key>/, reused after


def config_class() -> type:
    """The whole config's dataclass: ``name`` and the sections (``model`` from
    :func:`model_config_class`)."""
    return _config_class(model_config_class())


@functools.lru_cache(maxsize=8)
def _config_class(model: type) -> type:
    return dataclasses.make_dataclass("Config", [
        ("name", str | None, field(default=None)),  # run name (runs/<name>); null: the file's stem
        ("model", model, field(default_factory=model)),
        ("data", DataConfig, field(default_factory=DataConfig)),
        ("train", TrainConfig, field(default_factory=TrainConfig)),
        ("eval", EvalConfig, field(default_factory=EvalConfig)),
        ("pretrain", PretrainConfig, field(default_factory=PretrainConfig)),
    ])


def __getattr__(name: str) -> Any:
    """``ModelConfig`` and ``Config``: the classes of the registry as it is now."""
    if name == "ModelConfig":
        return model_config_class()
    if name == "Config":
        return config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
