"""The config's value checks: choices, ranges and settings that go together, each failing with a
one-line :class:`~mrae.errors.ConfigError` that names the full key and what is valid."""

from __future__ import annotations

import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mrae.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def validate(cfg: DictConfig, source: str = "config") -> None:
    """Check the values the types cannot: choices, ranges, and pairs that go together.

    The model's settings are checked against their declarations (:func:`check_model`), the same
    that :func:`mrae.modeling.detector.build_detector` checks when it builds.
    """
    check_model(cfg.model, source)
    t, d, e, m = cfg.train, cfg.data, cfg.eval, cfg.model
    finite = all(math.isfinite(v) for v in (t.lr, t.momentum, t.weight_decay, t.gamma,
                                            t.warmup_factor, t.clip_grad_norm or 1.0))
    checks: list[tuple[str, bool, str]] = [
        ("name", cfg.name is None or (re.fullmatch(r"[A-Za-z0-9_.+-]+", cfg.name) is not None
                                      and cfg.name not in (".", "..")),
         "must be a plain folder name (letters, digits, _ . + -), without / or .."),
        ("train", finite, "holds a value that is not a finite number (inf or nan); give numbers"),
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
        ("eval.curve_max_images", e.curve_max_images is None or e.curve_max_images >= 1,
         "must be >= 1, or null for eval.max_images"),
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
    _check_eval(e, m, source)
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


def check_model(model: DictConfig, source: str = "config") -> None:
    """The ``model`` section against the settings the registry declares
    (:mod:`mrae.modeling.registry`): the host and extractor names, each value's choices or range,
    each host's settings as a whole (its section with the common keys: anchors against the input
    size), and an extractor setting that the chosen extractor does not read kept at its default.
    Every host's section is checked, the active one and the others (a switch must not hide a bad
    value). Raises a one-line ConfigError naming the full key (``model.faster_rcnn.head``)."""
    from mrae.modeling import registry
    from mrae.modeling.backbone_settings import BackboneSettings
    from mrae.modeling.settings import check_values, make_settings

    values: dict[str, Any] = OmegaConf.to_container(model, resolve=True)  # type: ignore[assignment]
    try:
        registry.host(values["detector"])
        registry.extractor(values["extractor"])
        check_values(values, BackboneSettings)
        for entry in registry.EXTRACTORS.values():
            check_values(values, entry.settings)
        common = {k: values[k] for k in registry.common_host_fields()}
        for host, entry in registry.HOSTS.items():
            section = values.get(host) or {}
            make_settings(entry.settings, {**common, **section},
                          prefix=lambda k, h=host, own=section: f"model.{h}.{k}" if k in own else f"model.{k}")
        flat = {k: v for k, v in values.items() if k not in registry.HOSTS}
        problem = registry.out_of_scope(flat, values["extractor"], values["detector"])
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")


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
        ("pretrain.images", (p.annotations is None) == (p.images is None),
         "goes with pretrain.annotations: set both (a COCO dataset's crops) or neither"),
    ]


def model_choices() -> dict[str, tuple[Any, ...]]:
    """The valid values of the model's choice settings, ``{key: choices}`` (the host's own keys
    as ``faster_rcnn.head``), from the declarations of :mod:`mrae.modeling.registry`."""
    from mrae.modeling import registry
    from mrae.modeling.settings import spec

    found: dict[str, tuple[Any, ...]] = {"detector": tuple(registry.HOSTS),
                                         "extractor": tuple(registry.EXTRACTORS)}
    flat = {**registry.backbone_fields(), **registry.extractor_fields(), **registry.common_host_fields()}
    for key, f in flat.items():
        if spec(f).choices is not None:
            found[key] = spec(f).choices  # type: ignore[assignment]
    for host in registry.HOSTS:
        for key, f in registry.host_section_fields(host).items():
            if spec(f).choices is not None:
                found[f"{host}.{key}"] = spec(f).choices  # type: ignore[assignment]
    return found


def _check_eval(e: Any, m: Any, source: str) -> None:
    """``eval.max_dets`` (increasing, >= 1, the last at most ``model.detections_per_img``) and
    ``eval.group_by`` (a regex that compiles, with a named group)."""
    from mrae.evaluation.options import check_max_dets, parse_group_by

    try:
        check_max_dets(list(e.max_dets), int(m.detections_per_img), what="eval.max_dets",
                       raise_cap="model.detections_per_img={n}")
        if e.group_by is not None:
            parse_group_by(str(e.group_by), what="eval.group_by")
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def best_metric_choices() -> tuple[str, ...]:
    """The evaluation metrics (higher is better) that ``train.best_metric`` may name."""
    from mrae.choices import DIAGNOSTIC_COLUMNS, TABLE_COLUMNS

    return tuple(m for m in (*TABLE_COLUMNS, *DIAGNOSTIC_COLUMNS) if m != "ms_per_image")
