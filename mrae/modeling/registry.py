"""The extractors and the hosts, each registered once: name -> (builder, settings class).

:data:`EXTRACTORS` and :data:`HOSTS` are plain mappings. A builder is written as
``"module:attribute"`` and imported only when a model is built, so that reading the registry (a
config being loaded and checked) imports no torch; a callable is taken as it is. Everything else
is derived from these two mappings: the config's ``model`` section and its checks
(:mod:`mrae.engine.config_schema`, :mod:`mrae.engine.config_checks`), the keywords of
:func:`mrae.modeling.detector.build_detector`, the "does this setting apply" refusal
(:func:`out_of_scope`) and the host study's hosts (:mod:`mrae.apps.study.claims`).

An extractor builder is ``(channels: {"c1", "c2", "c3"} -> width, out_channels, settings) ->
nn.Module``; a host builder ``(backbone: ExtractorBackbone, settings) -> detector`` (a host that
runs conv5_x, as Faster R-CNN's ``c4`` head, takes it with ``backbone.take_conv5()``).
Adding one is a module and one entry here (docs/architecture.md, "Where new things go").
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mrae.errors import ConfigError
from mrae.modeling.backbone_settings import BackboneSettings
from mrae.modeling.extractor_settings import (
    ExtractorSettings,
    MraeSettings,
    SingleSettings,
    UpsampleSettings,
)
from mrae.modeling.host_settings import (
    FasterRCNNSettings,
    FCOSSettings,
    HostSettings,
    RetinaNetSettings,
)
from mrae.modeling.settings import declared


@dataclass(frozen=True)
class Registered:
    """One registration: the builder (``"module:attribute"``, resolved when first built, or a
    callable) and the settings dataclass it is given an instance of."""

    builder: str | Callable[..., Any]
    settings: type

    def resolve(self) -> Callable[..., Any]:
        """The builder itself (imports its module on first use)."""
        if callable(self.builder):
            return self.builder
        module, _, path = self.builder.partition(":")
        found: Any = importlib.import_module(module)
        for part in path.split("."):
            found = getattr(found, part)
        return found


#: ``model.extractor`` -> its builder and settings (keys flat in the ``model`` section).
EXTRACTORS: dict[str, Registered] = {
    "single": Registered("mrae.modeling.extractors.single:SingleLevel.from_settings", SingleSettings),
    "soft": Registered("mrae.modeling.extractors.soft:SoftAttention.from_settings", UpsampleSettings),
    "mrae": Registered("mrae.modeling.extractors.mrae:MRAE.from_settings", MraeSettings),
    "concat": Registered("mrae.modeling.extractors.fusion:ConcatFusion.from_settings", UpsampleSettings),
    "sum": Registered("mrae.modeling.extractors.fusion:SumFusion.from_settings", UpsampleSettings),
    "fpn": Registered("mrae.modeling.extractors.fpn:FPNExtractor.from_settings", ExtractorSettings),
}

#: ``model.detector`` -> its builder and settings (its own keys in ``model.<name>``).
HOSTS: dict[str, Registered] = {
    "faster_rcnn": Registered("mrae.modeling.hosts.faster_rcnn:build_faster_rcnn", FasterRCNNSettings),
    "retinanet": Registered("mrae.modeling.hosts.retinanet:build_retinanet", RetinaNetSettings),
    "fcos": Registered("mrae.modeling.hosts.fcos:build_fcos", FCOSSettings),
}


def extractor(name: str) -> Registered:
    """The registration of extractor ``name``; ConfigError naming the choices otherwise."""
    if name not in EXTRACTORS:
        raise ConfigError(f"model.extractor={name!r} is not valid; choose one of {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name]


def host(name: str) -> Registered:
    """The registration of host ``name``; ConfigError naming the choices otherwise."""
    if not isinstance(name, str) or name not in HOSTS:
        raise ConfigError(f"model.detector={name!r} is not valid; choose one of {', '.join(HOSTS)}")
    return HOSTS[name]


def backbone_fields() -> dict[str, dataclasses.Field]:
    """The backbone's keys (flat in ``model``)."""
    return declared(BackboneSettings)


def common_host_fields() -> dict[str, dataclasses.Field]:
    """The keys every host reads (flat in ``model``)."""
    return declared(HostSettings)


def host_section_fields(name: str) -> dict[str, dataclasses.Field]:
    """The keys of host ``name``'s own section ``model.<name>`` (its settings less the common)."""
    common = common_host_fields()
    return {k: f for k, f in declared(HOSTS[name].settings).items() if k not in common}


def extractor_fields() -> dict[str, dataclasses.Field]:
    """Every extractor's keys (flat in ``model``), each once, in registration order."""
    found: dict[str, dataclasses.Field] = {}
    for entry in EXTRACTORS.values():
        for key, f in declared(entry.settings).items():
            found.setdefault(key, f)
    return found


def extractors_reading(key: str) -> tuple[str, ...]:
    """The extractors whose settings declare ``key``."""
    return tuple(n for n, e in EXTRACTORS.items() if key in declared(e.settings))


def hosts_reading(key: str) -> tuple[str, ...]:
    """The hosts whose own section declares ``key``."""
    return tuple(n for n in HOSTS if key in host_section_fields(n))


def section_keys() -> set[str]:
    """Every key that lives in a host's section (of any host)."""
    return {k for n in HOSTS for k in host_section_fields(n)}


def check_registry() -> None:
    """The registrations fit together: every host's settings extend :class:`HostSettings`, every
    extractor's :class:`ExtractorSettings`; an extractor key declared by two extractors is one
    field (one default); no key is both flat and a section name. Raises ValueError naming it."""
    flat: dict[str, Any] = {}
    for name, entry in HOSTS.items():
        if not (isinstance(entry.settings, type) and issubclass(entry.settings, HostSettings)):
            raise ValueError(f"host {name!r}: its settings must extend HostSettings")
    for name, entry in EXTRACTORS.items():
        if not (isinstance(entry.settings, type) and issubclass(entry.settings, ExtractorSettings)):
            raise ValueError(f"extractor {name!r}: its settings must extend ExtractorSettings")
        for key, f in declared(entry.settings).items():
            if key in flat and flat[key] != f.default:
                raise ValueError(f"extractor {name!r} declares {key!r} with another default; "
                                 "declare it once, in a base class both extend")
            flat[key] = f.default
    names = [*backbone_fields(), *extractor_fields(), *common_host_fields(), "detector", "extractor"]
    clash = sorted(set(names) & set(HOSTS) | {k for k in set(names) if names.count(k) > 1})
    if clash:
        raise ValueError(f"model keys declared twice or named as a host: {clash}")


def out_of_scope(settings: Mapping[str, Any], extractor_name: str | None, detector: str) -> str | None:
    """The first flat setting of ``settings`` that differs from its default but that the
    extractor (None: a module given in the Python API) or the host does not read, as the one line
    ``"model.KEY=VALUE applies to ... only, not ...; remove it"``; None when every one applies.

    Host keys are read flat here (the Python API's ``build_detector(detector=..., head=...)``); a
    config holds them in the host's section, which only that host reads."""
    given_extractor = repr(extractor_name) if extractor_name is not None else "an extractor given as a module"
    readers = EXTRACTORS[extractor_name].settings if extractor_name in EXTRACTORS else ExtractorSettings
    own = declared(readers)
    for key, f in extractor_fields().items():
        if key in settings and key not in own and not same(settings[key], f.default):
            users = " / ".join(extractors_reading(key))
            return (f"model.{key}={settings[key]!r} applies to extractor {users} only, not to "
                    f"{given_extractor}; remove it")
    mine = host_section_fields(detector)
    for key in section_keys() - set(mine):
        if key in settings:
            default = next(host_section_fields(n)[key].default for n in hosts_reading(key))
            if not same(settings[key], default):
                users = " / ".join(hosts_reading(key))
                return (f"model.{key}={settings[key]!r} applies to detector {users} only, not to "
                        f"{detector!r}; remove it")
    return None


def inapplicable_extractor_keys(settings: Mapping[str, Any], extractor_name: str) -> list[str]:
    """The extractor keys of ``settings`` that differ from their defaults but that
    ``extractor_name`` does not read, in ``settings``' order."""
    own = declared(EXTRACTORS[extractor_name].settings)
    fields = extractor_fields()
    return [k for k, v in settings.items() if k in fields and k not in own and not same(v, fields[k].default)]


def same(value: object, default: object) -> bool:
    """``value`` equals ``default``, sequences compared as lists of numbers (a config's list of
    ints against a declared tuple of floats)."""
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        try:
            return [float(v) for v in value] == [float(v) for v in default]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return list(value) == list(default)
    return value == default
