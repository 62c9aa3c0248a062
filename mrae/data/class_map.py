"""Which classes `mrae convert` keeps, merges or turns into ignore regions.

Applied to the class names as the labels write them (YOLO's and VisDrone's indices already turned
into names), in this order:

1. ``ignore`` (``--ignore-classes DontCare``): a box of one of these classes becomes an ignore
   region of every kept class (as VisDrone's "ignored regions"), never a category;
2. ``rename`` (``--map truck=vehicle,bus=vehicle``): a class takes another name; two classes given
   the same name become one category;
3. ``keep`` (``--classes car,vehicle``, names after ``--map``): only these classes stay, in this
   order (category 1, 2, ...); a box of any other class is dropped (its ignore regions too).

Without ``keep`` the categories are the known names (a names file's order, else sorted), renamed,
each once, in order of first appearance. A name that the labels do not have is a ConfigError, so
that a typo does not silently drop a class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mrae.errors import ConfigError


@dataclass(frozen=True)
class ClassMap:
    """The ``--classes``, ``--map`` and ``--ignore-classes`` of a conversion; empty: no change."""

    keep: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()

    def categories(self, names: list[str]) -> list[str]:
        """The output categories, in order, from the known class ``names`` (checked first)."""
        self.check(names)
        if self.keep:
            return list(self.keep)
        out: list[str] = []
        for name in names:
            if name in self.ignore:
                continue
            new = self.rename.get(name, name)
            if new not in out:
                out.append(new)
        return out

    def check(self, names: list[str]) -> None:
        """ConfigError naming the option and the name when one of them is not a class of ``names``."""
        known = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", ..."
        for option, given in (("--ignore-classes", self.ignore), ("--map", list(self.rename))):
            for name in given:
                if name not in names:
                    raise ConfigError(f"{option}: {name!r} is not a class of the labels ({known}); "
                                      "check the spelling (names are case-sensitive)")
        both = set(self.ignore) & set(self.rename)
        if both:
            raise ConfigError(f"{sorted(both)[0]!r} is in both --ignore-classes and --map; "
                              "give it to one of them")
        mapped = {self.rename.get(n, n) for n in names if n not in self.ignore}
        if names and not mapped:
            raise ConfigError(f"--ignore-classes names every class of the labels ({known}): no "
                              "category would be left to detect; ignore fewer classes")
        for name in self.keep:
            if name not in mapped:
                raise ConfigError(f"--classes: {name!r} is not a class of the labels after --map "
                                  f"({', '.join(sorted(mapped))}); check the spelling")

    def target(self, name: str) -> str | None:
        """The category a box of class ``name`` goes to: its new name, or None when dropped.
        (An ``ignore`` class is handled by the caller: :meth:`is_ignored`.)"""
        new = self.rename.get(name, name)
        if self.keep and new not in self.keep:
            return None
        return new

    def is_ignored(self, name: str) -> bool:
        """Whether a box of class ``name`` becomes an ignore region of every class."""
        return name in self.ignore


def parse_names(text: str | None, option: str) -> tuple[str, ...]:
    """``"car,truck"`` -> ``("car", "truck")``; ConfigError on an empty or repeated name."""
    if text is None:
        return ()
    names = tuple(n.strip() for n in text.split(","))
    if not names or any(not n for n in names):
        raise ConfigError(f"{option} {text!r}: give class names separated by commas, e.g. "
                          f"{option} car,truck")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{option}: {name!r} is given twice")
    return names


def parse_rename(text: str | None) -> dict[str, str]:
    """``"truck=vehicle,bus=vehicle"`` -> ``{"truck": "vehicle", "bus": "vehicle"}``; ConfigError
    on a pair without ``=``, an empty name or a class mapped twice."""
    if text is None:
        return {}
    rename: dict[str, str] = {}
    for pair in text.split(","):
        old, sep, new = (p.strip() for p in pair.partition("="))
        if not sep or not old or not new:
            raise ConfigError(f"--map {text!r}: give old=new pairs separated by commas, e.g. "
                              "--map truck=vehicle,bus=vehicle")
        if old in rename:
            raise ConfigError(f"--map: {old!r} is mapped twice")
        rename[old] = new
    return rename
