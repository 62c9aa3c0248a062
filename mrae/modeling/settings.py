"""How a model setting is declared once: a field of a frozen dataclass whose metadata carries its
help line and what a valid value is (a :class:`Rule`, or a tuple of choices).

Each extractor and each host declares its settings so (:mod:`mrae.modeling.backbone_settings`,
:mod:`mrae.modeling.extractor_settings`, :mod:`mrae.modeling.host_settings`) and registers them
(:mod:`mrae.modeling.registry`); the config's ``model`` section, its checks and
:func:`mrae.modeling.detector.build_detector`'s keywords are derived from these declarations.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Toy:
...     width: int = setting(8, "channels of the toy map", rule=at_least(1))
...     kind: str = setting("a", "which toy", choices=("a", "b"))
>>> make_settings(Toy, {"width": 4}, "model.toy")
Toy(width=4, kind='a')
>>> make_settings(Toy, {"kind": "c"}, "model.toy")
Traceback (most recent call last):
...
mrae.errors.ConfigError: model.toy.kind='c' is not valid; choose one of a, b

This module imports neither torch nor anything that does: loading a config stays light.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from mrae.errors import ConfigError

T = TypeVar("T")
META = "mrae_setting"


@dataclass(frozen=True)
class Rule:
    """What a valid value is: ``test(value) -> bool`` and the words that say it (``"an integer
    >= 1"``), which complete the one-line error ``"model.KEY=VALUE is not valid; give TEXT"``."""

    test: Callable[[Any], bool]
    text: str


@dataclass(frozen=True)
class Setting:
    """A field's metadata: its help line, its rule or its choices, and whether null is valid."""

    help: str
    rule: Rule | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False


def setting(default: Any, help: str, *, rule: Rule | None = None,
            choices: tuple[Any, ...] | None = None, nullable: bool = False) -> Any:
    """A dataclass field with its default, its one-line ``help`` and its valid values (``rule`` or
    ``choices``; ``nullable``: None is valid too). Sequences are given as tuples."""
    meta = {META: Setting(help, rule, tuple(choices) if choices is not None else None, nullable)}
    return dataclasses.field(default=default, metadata=meta)


def is_number(value: Any) -> bool:
    """A real, finite number (bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def at_least(minimum: int) -> Rule:
    """An integer >= ``minimum``."""
    return Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
                f"an integer >= {minimum}")


def between(low: float, high: float, *, what: str = "a number", open_low: bool = False) -> Rule:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    left = "(" if open_low else "["
    return Rule(lambda v: is_number(v) and (low < v if open_low else low <= v) and v <= high,
                f"{what} in {left}{low:g}, {high:g}]")


def positives(length: int | None = None, *, what: str = "positive numbers") -> Rule:
    """A non-empty list of finite numbers > 0 (exactly ``length`` of them when given)."""
    count = f"{length} " if length is not None else "a list of "
    return Rule(lambda v: isinstance(v, list | tuple) and len(v) >= 1
                and (length is None or len(v) == length) and all(is_number(x) and x > 0 for x in v),
                f"{count}{what}" if length is not None else f"a list of {what}")


def declared(cls: type) -> dict[str, dataclasses.Field]:
    """The declared settings of a settings dataclass: ``{name: field}`` in declaration order."""
    return {f.name: f for f in dataclasses.fields(cls) if META in f.metadata}


def spec(field: dataclasses.Field) -> Setting:
    return field.metadata[META]


def defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` of a settings dataclass's declared fields."""
    return {name: f.default for name, f in declared(cls).items()}


def problem(value: Any, s: Setting) -> str | None:
    """Why ``value`` is not valid for ``s`` (the words after ``"is not valid; "``), or None."""
    if value is None and s.nullable:
        return None
    if s.choices is not None:
        if isinstance(value, bool) or value not in s.choices:
            return f"choose one of {', '.join(str(c) for c in s.choices)}"
        return None
    if s.rule is not None and not s.rule.test(value):
        return f"give {s.rule.text}" + (", or null" if s.nullable else "")
    return None


Prefix = str | Callable[[str], str]


def full_key(prefix: Prefix, key: str) -> str:
    """``"<prefix>.<key>"``, or ``prefix(key)`` where the prefix depends on the key (a host's
    common keys are ``model.<key>``, its own ``model.<host>.<key>``)."""
    return prefix(key) if callable(prefix) else f"{prefix}.{key}"


def check_values(values: Mapping[str, Any], cls: type, prefix: Prefix = "model") -> None:
    """Check each value of ``values`` that ``cls`` declares against its declaration.

    Raises:
        ConfigError: ``"<prefix>.<key>=<value> is not valid; <what is>"``, one line, for the first
            value that is not valid.
    """
    fields = declared(cls)
    for key, value in values.items():
        if key in fields:
            why = problem(value, spec(fields[key]))
            if why is not None:
                raise ConfigError(f"{full_key(prefix, key)}={_shown(value)} is not valid; {why}")


def make_settings(cls: type[T], values: Mapping[str, Any], prefix: Prefix = "model") -> T:
    """An instance of the settings dataclass ``cls`` from ``values`` (keys it does not declare are
    left out; lists become tuples), checked value by value (:func:`check_values`) and then as a
    whole (the instance's ``problems()``, where the class has it).

    Raises:
        ConfigError: one line naming the key (``<prefix>.<key>``) and what is valid.
    """
    check_values(values, cls, prefix)
    given = {k: _frozen(v) for k, v in values.items() if k in declared(cls)}
    made = cls(**given)
    relations = getattr(made, "problems", None)
    for key, why in relations() if relations is not None else ():
        value = values[key] if key in values else getattr(made, key)
        raise ConfigError(f"{full_key(prefix, key)}={_shown(value)} is not valid; {why}")
    return made


def as_dict(settings: Any) -> dict[str, Any]:
    """The declared fields of a settings instance, ``{name: value}``."""
    return {name: getattr(settings, name) for name in declared(type(settings))}


def config_type(cls: type, name: str) -> Any:
    """The type a config (OmegaConf) gives the field ``name`` of ``cls``: its declared type with
    tuples as lists (``tuple[float, ...]`` -> ``list[float]``; ``tuple[int, int]`` -> ``list[int]``)."""
    return _listed(typing.get_type_hints(cls)[name])


def _listed(hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        inner = [a for a in args if a is not Ellipsis]
        return list[inner[0]] if inner else list  # type: ignore[valid-type]
    if args and origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = tuple(_listed(a) for a in args)
        return typing.Union[parts]  # noqa: UP007 (a runtime union of computed types)
    return hint


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
