"""The experiment config: a small typed object read from YAML, with command-line overrides.

The schema is the dataclasses below (``Config`` and its sections); a YAML file lists only what
differs from their defaults. ``load_config(path, overrides)``:

1. reads ``path``; its optional ``base:`` key names a parent YAML (relative to the file), merged
   first, recursively (so ``configs/synth/*.yaml`` share ``configs/synth/_base.yaml``);
2. applies the overrides ``key.sub=value`` (values parsed as YAML: ``train.milestones=[10,20]``);
3. checks every value: unknown keys, wrong types and choices outside their valid set raise a
   one-line :class:`~mrae.errors.ConfigError` naming the full key and the valid choices.

Sections: ``model`` holds exactly :func:`mrae.modeling.detector.build_detector`'s keyword arguments
(``num_classes: null`` means "from the training data": its classes + 1 for the background);
``data`` the dataset paths (or the synthetic dataset generated when they are null); ``train`` the
schedule; ``eval`` the periodic evaluation.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from mrae.errors import ConfigError

ConfigPath = str | PathLike[str]


@dataclass
class ModelConfig:
    """The keyword arguments of :func:`mrae.modeling.detector.build_detector` (see its docstring)."""

    extractor: str = "mrae"
    level: int = 1
    template: int = 2
    mode: str = "global"
    backbone: str = "resnet18"
    pretrained: str | None = None
    trainable_layers: int | None = None  # null: 3 with trained weights, 5 (all) from scratch
    norm: str = "auto"  # auto: frozen BN with trained weights, BN from scratch; groupnorm
    head: str = "mlp"
    out_channels: int = 256
    num_classes: int | None = None  # None: the training data's classes + 1 (background)
    anchor_sizes: list[float] = field(default_factory=lambda: [8, 16, 32, 64])
    aspect_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    min_size: int = 300
    max_size: int = 512
    fixed_size: list[int] | None = None
    upsample: str = "bilinear"
    learn_temperature: bool = False
    embed_channels: int = 64  # mrae: width of each level's 1x1-conv embedding
    pool_size: int = 4  # mrae (global): the P x P grid the embedding is average-pooled to
    embed_dim: int = 256  # mrae (global): length of the vectors whose cosines give the attention
    fpn_anchors: str = "per_level"
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_class: int = 100
    detections_per_img: int = 300
    # training: anchors/proposals (not positives) whose intersection over their own area with a
    # crowd or ignore region exceeds this are neither positives nor negatives; null or < 0: off
    ignore_iof_thr: float | None = 0.5


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


@dataclass
class PretrainConfig:
    """The proxy pretraining (:mod:`mrae.engine.pretrain`) run when ``model.pretrained: synthetic``."""

    scenes: int = 800  # synthetic scenes the training crops are cut from (split id 2: no dataset's)
    val_scenes: int = 100  # further scenes whose crops measure the held-out accuracy
    seed: int = 0
    crop_size: int = 32  # px, square, native resolution
    background_per_image: int = 3  # background crops per scene (besides one per object/distractor)
    steps: int = 1000
    batch_size: int = 128
    lr: float = 0.1  # SGD (momentum 0.9, Nesterov), linear warm-up then cosine to 0
    weight_decay: float = 5e-4  # on conv and linear weights only
    cache_dir: str = ".cache/pretrain"  # trained once into cache_dir/<key>/, reused after


@dataclass
class Config:
    name: str | None = None  # run name; default run folder runs/<name>; null: the file's stem
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")

# Migration: keys that older versions wrote into stored configs (a run's config.yaml, a
# checkpoint's config) and that were removed since (eval.score_thresh and eval.batch_size were
# checked but never read). Such a config still loads: load_config (each YAML file) and
# config_from_dict drop these keys as they read it, without an error.
RETIRED_KEYS: dict[str, tuple[str, ...]] = {"eval": ("score_thresh", "batch_size")}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def load_config(path: ConfigPath, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Read a YAML config (with its ``base:`` chain) and the overrides; return it validated.

    Args:
        path: YAML file; keys absent from it keep their defaults (or its base's values).
        overrides: ``"key.sub=value"`` strings applied last (values are YAML: ``null``, ``[1,2]``).

    Returns:
        A structured ``DictConfig`` (the schema's types are enforced on later assignments too).

    Raises:
        ConfigError: the file is missing or not YAML, a ``base`` cycle, an unknown key, a value of
            the wrong type or outside its valid choices; the message names the file and full key.
    """
    path = Path(path)
    cfg = OmegaConf.structured(Config)
    for source, layer in _yaml_chain(path):
        cfg = _merge(cfg, layer, source)
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r}: write it as key.sub=value, e.g. train.steps=100")
    try:
        dotlist = OmegaConf.from_dotlist(overrides)
    except OmegaConfBaseException as error:
        raise ConfigError(f"overrides {overrides}: {_one_line(error)}") from None
    if "base" in dotlist:
        raise ConfigError("override base=...: `base` can only be set in a YAML file")
    cfg = _merge(cfg, dotlist, "command-line override")
    if cfg.name is None:
        cfg.name = path.stem
    validate(cfg, source=str(path))
    return cfg


def config_from_dict(data: dict[str, Any], source: str = "checkpoint") -> DictConfig:
    """A validated config from a plain dict (e.g. the resolved config stored in a checkpoint)."""
    cfg = _merge(OmegaConf.structured(Config), _drop_retired_keys(OmegaConf.create(data)), source)
    validate(cfg, source=source)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML text (what a run saves as ``config.yaml``)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (what a checkpoint stores)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def validate(cfg: DictConfig, source: str = "config") -> None:
    """Check the values the types cannot: choices, ranges, and pairs that go together.

    The model's choices come from :func:`model_choices` (the lists :mod:`mrae.modeling.detector` keeps);
    its numeric settings are checked by :func:`mrae.modeling.detector.build_detector` when it builds.
    """
    for key, choices in model_choices().items():
        value = cfg.model[key]
        if value not in choices:
            valid = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{source}: model.{key}={value!r} is not valid; choose one of {valid}")

    t, d, e, m = cfg.train, cfg.data, cfg.eval, cfg.model
    finite = all(math.isfinite(v) for v in (t.lr, t.momentum, t.weight_decay, t.gamma,
                                            t.warmup_factor, t.clip_grad_norm or 1.0))
    checks: list[tuple[str, bool, str]] = [
        ("name", cfg.name is None or (re.fullmatch(r"[A-Za-z0-9_.+-]+", cfg.name) is not None
                                      and cfg.name not in (".", "..")),
         "must be a plain folder name (letters, digits, _ . + -), without / or .."),
        ("train", finite, "holds a value that is not a finite number (inf or nan); give numbers"),
        ("model.rpn_nms_thresh", 0 < m.rpn_nms_thresh <= 1, "must be an IoU in (0, 1]"),
        ("model.box_nms_thresh", 0 < m.box_nms_thresh <= 1, "must be an IoU in (0, 1]"),
        ("model.box_score_thresh", 0 <= m.box_score_thresh <= 1, "must be a score in [0, 1]"),
        ("model.embed_channels", m.embed_channels >= 1, "must be >= 1"),
        ("model.pool_size", m.pool_size >= 1, "must be >= 1"),
        ("model.embed_dim", m.embed_dim >= 1, "must be >= 1"),
        ("model.ignore_iof_thr", m.ignore_iof_thr is None or m.ignore_iof_thr <= 1,  # nan fails too
         "must be an IoF in [0, 1], or null (or negative) to train without ignore regions"),
        ("model.anchor_sizes", all(math.isfinite(v) and v > 0 for v in m.anchor_sizes),
         "must be finite sizes > 0 (pixels)"),
        ("model.aspect_ratios", all(math.isfinite(v) and v > 0 for v in m.aspect_ratios),
         "must be finite ratios > 0 (h/w)"),
        ("train.steps", t.steps >= 1, "must be >= 1"),
        ("train.batch_size", t.batch_size >= 1, "must be >= 1"),
        ("train.lr", t.lr > 0, "must be > 0"),
        ("train.momentum", 0 <= t.momentum < 1, "must be in [0, 1)"),
        ("train.weight_decay", t.weight_decay >= 0, "must be >= 0"),
        ("train.gamma", t.gamma > 0, "must be > 0"),
        ("train.warmup_steps", t.warmup_steps >= 0, "must be >= 0"),
        ("train.warmup_factor", 0 < t.warmup_factor <= 1, "must be in (0, 1]"),
        ("train.clip_grad_norm", t.clip_grad_norm is None or t.clip_grad_norm > 0,
         "must be > 0, or null for no clipping"),
        ("train.eval_every", t.eval_every >= 0, "must be >= 0 (0: evaluate after the last step)"),
        ("train.checkpoint_every", t.checkpoint_every >= 0,
         "must be >= 0 (0: checkpoint after the last step only)"),
        ("train.keep_last", t.keep_last >= 0, "must be >= 0"),
        ("train.log_every", t.log_every >= 1, "must be >= 1"),
        ("train.milestones", list(t.milestones) == sorted(set(t.milestones))
         and all(m >= 1 for m in t.milestones), "must be increasing steps >= 1"),
        ("data.workers", d.workers >= 0, "must be >= 0"),
        ("data.train_crop", d.train_crop is None or (len(d.train_crop) == 2 and min(d.train_crop) >= 32),
         "must be [height, width] in model-input pixels, each >= 32, or null"),
        ("data.crop_min_visible", d.crop_min_visible is None or 0 < d.crop_min_visible <= 1,
         "must be a share of a box's area in (0, 1], or null (boxes under half inside dropped)"),
        ("data.crop_min_visible", d.crop_min_visible is None or d.train_crop is not None,
         "needs data.train_crop (it applies to the boxes the crops cut)"),
        ("data.crop_min_visible", d.crop_min_visible is None
         or (m.ignore_iof_thr is not None and m.ignore_iof_thr >= 0),
         "needs model.ignore_iof_thr (>= 0): the boxes cut below it become ignore regions"),
        ("data.crop_scale", d.crop_scale == "image" or d.train_crop is not None,
         "needs data.train_crop (the tile size)"),
        ("data.synthetic.train_images", d.synthetic.train_images >= 1, "must be >= 1"),
        ("data.synthetic.val_images", d.synthetic.val_images >= 1, "must be >= 1"),
        ("eval.max_images", e.max_images is None or e.max_images >= 1, "must be >= 1, or null for all"),
        *_pretrain_checks(cfg.pretrain),
    ]
    from mrae.choices import CROP_SCALES

    if d.crop_scale not in CROP_SCALES:
        raise ConfigError(
            f"{source}: data.crop_scale={d.crop_scale!r} is not valid; choose one of {', '.join(CROP_SCALES)}"
        )
    for key, ok, what in checks:
        if not ok:
            raise ConfigError(f"{source}: {key}={OmegaConf.select(cfg, key)!r} {what}")

    if not _DEVICE.fullmatch(t.device):
        raise ConfigError(
            f"{source}: train.device={t.device!r} is not valid; choose one of {', '.join(DEVICE_CHOICES)}"
        )
    metrics = best_metric_choices()
    if t.best_metric not in metrics:
        raise ConfigError(
            f"{source}: train.best_metric={t.best_metric!r} is not valid; choose one of {', '.join(metrics)}"
        )
    from mrae.choices import OPTIMIZERS

    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"{source}: train.optimizer={t.optimizer!r} is not valid; choose one of {', '.join(OPTIMIZERS)}"
        )
    for split in ("train", "val"):
        images, annotations = d[f"{split}_images"], d[f"{split}_annotations"]
        if (images is None) != (annotations is None):
            raise ConfigError(
                f"{source}: data.{split}_images and data.{split}_annotations go together: "
                "set both (a COCO dataset) or neither (the synthetic dataset)"
            )
    if d.train_images is None and d.val_images is not None:
        raise ConfigError(
            f"{source}: data.val_images is set but data.train_images is null; set the training "
            "data too, or neither for the synthetic dataset"
        )


def _pretrain_checks(p: DictConfig) -> list[tuple[str, bool, str]]:
    finite = all(math.isfinite(v) for v in (p.lr, p.weight_decay))
    return [
        ("pretrain.scenes", p.scenes >= 1, "must be >= 1"),
        ("pretrain.val_scenes", p.val_scenes >= 1, "must be >= 1"),
        ("pretrain.crop_size", 16 <= p.crop_size <= 300, "must be in 16..300 px"),
        ("pretrain.background_per_image", p.background_per_image >= 0, "must be >= 0"),
        ("pretrain.steps", p.steps >= 1, "must be >= 1"),
        ("pretrain.batch_size", p.batch_size >= 1, "must be >= 1"),
        ("pretrain.lr", finite and p.lr > 0, "must be a finite number > 0"),
        ("pretrain.weight_decay", finite and p.weight_decay >= 0, "must be a finite number >= 0"),
    ]


def model_choices() -> dict[str, tuple[Any, ...]]:
    """The valid values of the model's choice settings (:mod:`mrae.choices`, torch-free)."""
    from mrae import choices as c

    return {
        "extractor": c.EXTRACTOR_NAMES,
        "level": c.LEVEL_CHOICES,
        "template": c.LEVEL_CHOICES,
        "mode": c.MRAE_MODES,
        "backbone": c.BACKBONE_NAMES,
        "head": c.HEADS,
        "upsample": c.UPSAMPLE_MODES,
        "fpn_anchors": c.FPN_ANCHOR_CHOICES,
        "norm": c.NORM_CHOICES,
    }


def best_metric_choices() -> tuple[str, ...]:
    """The evaluation metrics (higher is better) that ``train.best_metric`` may name."""
    from mrae.choices import DIAGNOSTIC_COLUMNS, TABLE_COLUMNS

    return tuple(m for m in (*TABLE_COLUMNS, *DIAGNOSTIC_COLUMNS) if m != "ms_per_image")


def synthetic_dir(cfg: DictConfig) -> Path:
    """The cache folder of the config's synthetic dataset; its name says what it holds."""
    s = cfg.data.synthetic
    key = f"seed{s.seed}_train{s.train_images}_val{s.val_images}_{s.width}x{s.height}"
    return Path(s.cache_dir) / key


def resolve_data(cfg: DictConfig, progress: bool = True) -> dict[str, str | None]:
    """The 4 data paths: the config's, or the synthetic dataset's (generated once, then reused).

    Returns:
        ``{"train_images", "train_annotations", "val_images", "val_annotations"}``; the val pair
        is None when the config gives training data without a val set.
    """
    d = cfg.data
    if d.train_images is not None:
        paths = {k: d[k] for k in ("train_images", "train_annotations", "val_images", "val_annotations")}
        for key, value in paths.items():
            if value is not None and not Path(value).exists():
                raise ConfigError(f"data.{key}: {value} does not exist; check the path (relative to {Path.cwd()})")
        return paths

    from mrae.data.synth import SPLITS, generate

    out = synthetic_dir(cfg)
    paths = {}
    for split in SPLITS:
        paths[f"{split}_images"] = str(out / "images" / split)
        paths[f"{split}_annotations"] = str(out / "annotations" / f"instances_{split}.json")
    # The annotation files are written last and atomically: both present means a complete dataset.
    if all(Path(paths[f"{split}_annotations"]).is_file() for split in SPLITS):
        return paths
    import fcntl

    s = d.synthetic
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process generating the same data: wait for it
        if all(Path(paths[f"{split}_annotations"]).is_file() for split in SPLITS):
            return paths
        try:
            return generate(
                out, train_images=s.train_images, val_images=s.val_images, seed=s.seed,
                width=s.width, height=s.height, progress=progress,
            )
        except ConfigError as error:  # e.g. "synth: width must be ..." -> name the config section
            raise ConfigError(f"data.synthetic: {error}") from None


def _yaml_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[str, DictConfig]]:
    """``[(source, layer), ...]`` from the root base to ``path``, each without its ``base`` key."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ConfigError(f"{path}: `base` forms a cycle ({chain}); remove one of the base keys")
    if not path.is_file():
        where = f" (the base of {seen[-1]})" if seen else ""
        raise ConfigError(f"{path}: config file not found{where}; check the path")
    try:
        layer = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the config ({_one_line(error)})") from None
    if not seen and not layer:
        raise ConfigError(f"{path}: the config is empty; give at least `base: <parent>.yaml` or a "
                          "section (model, data, train, eval, pretrain)")
    if isinstance(layer, ListConfig):
        raise ConfigError(f"{path}: a config is a mapping of sections (model, data, train, eval), not a list")
    _drop_retired_keys(layer)
    base = layer.pop("base", None)
    chain: list[tuple[str, DictConfig]] = []
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base: must be a relative path to a parent YAML, got {base!r}")
        chain = _yaml_chain(path.parent / base, (*seen, resolved))
    return [*chain, (str(path), layer)]


def _drop_retired_keys(layer: DictConfig) -> DictConfig:
    """``layer`` (one YAML file or a stored config) without the :data:`RETIRED_KEYS`, in place."""
    for section, keys in RETIRED_KEYS.items():
        part = layer.get(section)
        if isinstance(part, DictConfig):
            for key in keys:
                part.pop(key, None)
    return layer


def _merge(cfg: DictConfig, layer: DictConfig, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, layer)  # type: ignore[return-value]
    except ConfigKeyError as error:
        key = error.full_key or str(error.key)
        raise ConfigError(f"{source}: unknown key '{key}'; {_valid_keys(key)}") from None
    except OmegaConfBaseException as error:
        key = error.full_key or "?"
        raise ConfigError(f"{source}: {key}: {_type_message(error)}") from None


def _valid_keys(full_key: str) -> str:
    """'valid keys of <section>: a, b, c' for the section that ``full_key`` was looked up in."""
    parts = full_key.split(".")
    schema: Any = Config
    section = "the top level"
    for part in parts[:-1]:
        names = {f.name: f for f in dataclasses.fields(schema)}
        if part not in names or not dataclasses.is_dataclass(_field_type(schema, part)):
            break
        schema = _field_type(schema, part)
        section = part if section == "the top level" else f"{section}.{part}"
    keys = [f.name for f in dataclasses.fields(schema)]
    if section == "the top level":
        keys.append("base")
    return f"valid keys of {section}: {', '.join(keys)}"


def _field_type(schema: type, name: str) -> Any:
    hints = inspect.get_annotations(schema, eval_str=True)
    return hints[name]


def _type_message(error: OmegaConfBaseException) -> str:
    """OmegaConf's reason, without its multi-line 'full_key/object_type' appendix."""
    text = str(getattr(error, "msg", None) or error).split("\n")[0].strip()
    return text or type(error).__name__


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
