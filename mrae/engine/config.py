"""The experiment config: a small typed object read from YAML, with command-line overrides.

The schema is the dataclasses of :mod:`mrae.engine.config_schema` (``Config`` and its sections); a YAML file lists only what
differs from their defaults. ``load_config(path, overrides)``:

1. reads ``path``; its optional ``base:`` key names a parent YAML (relative to the file), merged
   first, recursively (so ``configs/synth/*.yaml`` share ``configs/synth/_base.yaml``);
2. applies the overrides ``key.sub=value`` (values parsed as YAML: ``train.milestones=[10,20]``);
3. checks every value: unknown keys, wrong types and choices outside their valid set raise a
   one-line :class:`~mrae.errors.ConfigError` naming the full key and the valid choices;
4. resets the sections of the hosts other than ``model.detector`` to their defaults.

Sections: ``model`` holds :func:`mrae.modeling.detector.build_detector`'s settings, derived from
the declarations of :mod:`mrae.modeling.registry`: the common keys flat, each host's own in its
sub-section ``model.<host>`` (which only that host reads, so that ``model.detector=fcos`` is one
override on any config); host keys written flat, as before the sections, are moved into them
(:func:`move_host_keys`). ``num_classes: null`` means "from the training data": its classes + 1;
``data`` the dataset paths (or the synthetic dataset generated when they are null); ``train`` the
schedule; ``eval`` the periodic evaluation.
"""

from __future__ import annotations

import dataclasses
import inspect
from os import PathLike
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from mrae.engine.config_checks import DEVICE_CHOICES, best_metric_choices, model_choices, validate
from mrae.engine.config_schema import (
    DataConfig,
    EvalConfig,
    PretrainConfig,
    SyntheticConfig,
    TrainConfig,
    config_class,
    model_config_class,
)
from mrae.errors import ConfigError
from mrae.inputs import CONFIG_LIMIT, read_text, shorten

__all__ = [
    "DEVICE_CHOICES", "DataConfig", "EvalConfig", "PretrainConfig",
    "SyntheticConfig", "TrainConfig", "best_metric_choices", "config_from_dict", "host_setting", "load_config",
    "model_choices", "move_host_keys", "resolve_data", "synthetic_dir", "to_dict", "to_yaml",
    "validate", "with_num_classes",
]


def __getattr__(name: str) -> Any:
    """``ModelConfig`` and ``Config``: the schema of the registry as it is now."""
    if name == "ModelConfig":
        return model_config_class()
    if name == "Config":
        return config_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

ConfigPath = str | PathLike[str]



# Migration: keys that older versions wrote into stored configs (a run's config.yaml, a
# checkpoint's config) and that were removed since (eval.score_thresh and eval.batch_size were
# checked but never read). Such a config still loads: load_config (each YAML file) and
# config_from_dict drop these keys as they read it, without an error. Keys that moved (a host's
# own keys, flat in `model` before the host sections) are mapped by move_host_keys.
RETIRED_KEYS: dict[str, tuple[str, ...]] = {"eval": ("score_thresh", "batch_size")}


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
    cfg = OmegaConf.structured(config_class())
    for source, layer in _yaml_chain(path):
        refuse_interpolation(layer, source)
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
    refuse_interpolation(dotlist, "command-line override")
    _move_overridden_host_keys(dotlist, cfg)
    cfg = _merge(cfg, dotlist, "command-line override")
    if cfg.name is None:
        cfg.name = path.stem
    validate(cfg, source=str(path))
    _reset_other_hosts(cfg)
    return cfg


def config_from_dict(data: dict[str, Any], source: str = "checkpoint") -> DictConfig:
    """A validated config from a plain dict (e.g. the resolved config stored in a checkpoint).

    A stored config resolves nothing: an interpolation in it (``${oc.env:HOME}``) is refused,
    never looked up in the environment."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the stored config is not a mapping of sections")
    try:
        layer = OmegaConf.create(data)
    except (OmegaConfBaseException, ValueError) as error:
        raise ConfigError(f"{source}: the stored config cannot be read ({shorten(str(error))})") from None
    refuse_interpolation(layer, source)
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"{source}: the stored config is not a mapping of sections")
    layer = move_host_keys(_drop_retired_keys(layer), source)
    cfg = _merge(OmegaConf.structured(config_class()), layer, source)
    _reset_inapplicable(cfg)
    validate(cfg, source=source)
    _reset_other_hosts(cfg)
    return cfg


def move_host_keys(layer: DictConfig, source: str = "config") -> DictConfig:
    """Migration, in place: the host keys that ``layer`` (one YAML file or a stored config) holds
    flat in ``model``, as configs did before the host sections, moved into the section of every
    host that reads them (``model.rpn_batch_size_per_image`` -> ``model.faster_rcnn.*``,
    ``model.anchor_sizes`` -> ``model.faster_rcnn.*`` and ``model.retinanet.*``). A value the
    layer also gives in the section itself is kept. The active host reads its own section and the
    others are reset (:func:`_reset_other_hosts`), so an old config builds what it built."""
    from mrae.modeling import registry

    model = layer.get("model") if isinstance(layer, DictConfig) else None
    if not isinstance(model, DictConfig):
        return layer
    _check_sections(model, source)
    for key in [k for k in model.keys() if k in registry.section_keys()]:
        value = model.pop(key)
        for host in registry.hosts_reading(str(key)):
            if model.get(host) is None:
                model[host] = {}
            section = model[host]  # the node in the tree (an assigned node is copied into it)
            if isinstance(section, DictConfig) and key not in section:
                section[key] = value
    return layer


def _check_sections(model: DictConfig, source: str) -> None:
    """A host's section, where ``model`` gives one, is a mapping of that host's settings."""
    from mrae.modeling import registry

    for host in registry.HOSTS:
        if host in model and model[host] is not None and not isinstance(model[host], DictConfig):
            raise ConfigError(f"{source}: model.{host}={shorten(str(model[host]), 60)!r} is not valid; "
                              f"give a mapping of {host}'s settings (model.{host}.KEY: VALUE)")


def _move_overridden_host_keys(dotlist: DictConfig, cfg: DictConfig) -> None:
    """A host key given flat on the command line (``model.head=c4``) goes into the section of the
    host the config builds (after the overrides); a key that host does not read is refused."""
    from mrae.modeling import registry

    model = dotlist.get("model")
    if not isinstance(model, DictConfig):
        return
    _check_sections(model, "command-line override")
    detector = model.get("detector", cfg.model.detector)
    try:
        registry.host(detector)  # an unknown host: named with the choices before anything else
    except ConfigError as error:
        raise ConfigError(f"command-line override: {error}") from None
    for key in [k for k in model.keys() if k in registry.section_keys()]:
        readers = registry.hosts_reading(str(key))
        if detector not in readers:
            where = " or ".join(f"model.{h}.{key}" for h in readers)
            raise ConfigError(f"command-line override: model.{key} applies to detector "
                              f"{' / '.join(readers)} only ({where}), not to {detector!r}; remove it")
        value = model.pop(key)
        if model.get(detector) is None:
            model[detector] = {}
        model[detector][key] = value


def _reset_other_hosts(cfg: DictConfig) -> None:
    """The sections of the hosts other than ``model.detector`` back to their defaults: only the
    active host reads its section, so the resolved config (a run's config.yaml, a checkpoint's)
    holds what the run used, whatever the other sections said before a host switch."""
    defaults = OmegaConf.structured(model_config_class())
    for host in _host_names():
        if host != cfg.model.detector:
            cfg.model[host] = defaults[host]


def _host_names() -> list[str]:
    from mrae.modeling import registry

    return list(registry.HOSTS)


def _reset_inapplicable(cfg: DictConfig) -> None:
    """Migration: a stored config (a checkpoint's) may hold an extractor setting that its extractor
    does not read (before issue 18 they were ignored, now a config file is refused for them): the
    model was built without it, so it goes back to its default. (A host's keys that another host
    reads sit in that host's section, which :func:`_reset_other_hosts` resets.)"""
    from mrae.modeling import registry

    m = cfg.model
    if m.extractor not in registry.EXTRACTORS:
        return  # validate names the bad choice
    defaults = OmegaConf.structured(model_config_class())
    for key in registry.inapplicable_extractor_keys(OmegaConf.to_container(m, resolve=True), m.extractor):  # type: ignore[arg-type]
        m[key] = defaults[key]


def host_setting(model: DictConfig, key: str, default: Any = None) -> Any:
    """``model.<detector>.<key>``: a setting of the config's own host, or ``default`` where that
    host does not read ``key`` (``host_setting(cfg.model, "fpn_anchors", "per_level")``)."""
    section = model.get(model.detector)
    return section.get(key, default) if isinstance(section, DictConfig) else default


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML text (what a run saves as ``config.yaml``)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python containers (what a checkpoint stores)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def with_num_classes(cfg: DictConfig, data_classes: int) -> DictConfig:
    """A copy of ``cfg`` whose ``model.num_classes`` is filled in (data classes + background)."""
    cfg = cfg.copy()
    wanted = data_classes + 1
    if cfg.model.num_classes is None:
        cfg.model.num_classes = wanted
    elif cfg.model.num_classes < wanted:
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} is too small for the training data's "
            f"{data_classes} classes; it counts the background too: set {wanted} or null"
        )
    return cfg


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

    from mrae.files import open_lock_file

    s = d.synthetic
    out.mkdir(parents=True, exist_ok=True)
    with open_lock_file(out / ".lock") as lock:
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
    if not path.exists():
        where = f" (the base of {seen[-1]})" if seen else ""
        raise ConfigError(f"{path}: config file not found{where}; check the path")
    text = read_text(path, CONFIG_LIMIT, what="config", error=ConfigError)
    try:
        layer = OmegaConf.create(text) if text.strip() else OmegaConf.create({})
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the config ({shorten(_one_line(error))})") from None
    if isinstance(layer, DictConfig) and not all(isinstance(k, str) for k in layer.keys()):
        raise ConfigError(f"{path}: a config's keys are section names (text)")
    if not seen and not layer:
        raise ConfigError(f"{path}: the config is empty; give at least `base: <parent>.yaml` or a "
                          "section (model, data, train, eval, pretrain)")
    if isinstance(layer, ListConfig):
        raise ConfigError(f"{path}: a config is a mapping of sections (model, data, train, eval), not a list")
    move_host_keys(_drop_retired_keys(layer), str(path))
    base = layer.pop("base", None)
    chain: list[tuple[str, DictConfig]] = []
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base: must be a relative path to a parent YAML, got {base!r}")
        chain = _yaml_chain(path.parent / base, (*seen, resolved))
    return [*chain, (str(path), layer)]


def refuse_interpolation(layer: DictConfig | ListConfig, source: str) -> None:
    """Refuse an OmegaConf interpolation (``${name}``, ``${oc.env:X}``) anywhere in ``layer``:
    mrae configs hold plain values, and nothing is resolved from the environment."""
    raw = OmegaConf.to_container(layer, resolve=False)

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        elif isinstance(value, str) and "${" in value:
            raise ConfigError(f"{source}: {key}: {shorten(value, 60)!r} is an interpolation; mrae "
                              "configs take plain values (write the value itself)")

    walk(raw, "")


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
    schema: Any = config_class()
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
    return f"valid keys of {section}: {', '.join(keys) or 'none'}"


def _field_type(schema: type, name: str) -> Any:
    hints = inspect.get_annotations(schema, eval_str=True)
    return hints[name]


def _type_message(error: OmegaConfBaseException) -> str:
    """OmegaConf's reason, without its multi-line 'full_key/object_type' appendix."""
    text = str(getattr(error, "msg", None) or error).split("\n")[0].strip()
    return text or type(error).__name__


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
