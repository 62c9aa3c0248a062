"""What the label readers of :mod:`mrae.data.formats` share: the label, text and number parsing.

Every reader has one signature, :data:`Reader`: ``read(path, image, options) -> Found``. It turns
the label file of one image (or, for a format with one label file per dataset, that image's part of
it) into :class:`Label` objects and raises DataError naming the file and, where there is one, the
line of anything malformed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mrae import inputs
from mrae.errors import DataError
from mrae.inputs import LABEL_LIMIT, shorten


@dataclass
class Label:
    """One box of a label file: ``category`` a name or a 0-based index, ``box`` x1 y1 x2 y2 px."""

    category: str | int | None  # None: an ignore region of every category
    box: tuple[float, float, float, float]
    where: str  # "file line N", for error messages
    ignore: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides its file and image: the class names (YOLO's indices), the
    VisDrone "others" rule (``--visdrone-others``) and the VOC box convention (``--voc-boxes``)."""

    names: tuple[str, ...] = ()
    visdrone_others: str = "ignore"
    voc_boxes: str = "pixels"


@dataclass
class Found:
    """What a reader found for one image: its labels and what the report counts."""

    labels: list[Label] = field(default_factory=list)
    dropped: int = 0  # boxes the format's own rules drop (VisDrone "others" under drop)
    size_mismatch: str | None = None  # the label file states another image size (VOC <size>)
    suspicious: str | None = None  # a box the chosen convention cannot have (where it is)


#: ``read(label_path, image, options)``: ``image`` is the COCO image dict (``file_name``,
#: ``width``, ``height``); a reader may add keys to it (DOTA's ``imagesource``, ``gsd``).
Reader = Callable[[Path, dict[str, Any], ReadOptions], Found]


def read_names(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a YAML file with ``names:`` (list or dict)."""
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise DataError(f"{path}{where}: malformed YAML "
                            f"({shorten(str(getattr(error, 'problem', error)))})") from None
        raw = loaded.get("names") if isinstance(loaded, dict) else None
        if isinstance(raw, dict):
            keys = sorted(raw, key=str)
            if set(raw) != set(range(len(raw))):
                raise DataError(f"{path}: 'names' keys must be the class indices 0..{len(raw) - 1}, "
                                f"found {shorten(str(keys[:20]), 120)}")
            raw = [raw[i] for i in range(len(raw))]
        if not isinstance(raw, list) or not raw:
            raise DataError(f"{path}: needs 'names:', a list of class names (or a dict "
                            "index: name)")
        for index, name in enumerate(raw):  # before any is formatted: a nested (alias-bomb)
            if isinstance(name, bool) or not isinstance(name, str | int | float):  # value's text
                raise DataError(f"{path}: class name {index} is a {type(name).__name__}, not a "
                                "plain string; give one name per class")  # is exponentially long
        names = [str(n) for n in raw]
    else:
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        names = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise DataError(f"{path} line {number}: empty; give one class name per line")
            names.append(line.strip())
        if not names:
            raise DataError(f"{path}: no class names; give one per line")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: class name {shorten(repr(name), 80)} appears twice")
        seen.add(name)
    return names


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered non-empty lines of a label file, stripped."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, line


def read_text(path: Path) -> str:
    """The UTF-8 text of a label file (a BOM dropped; a regular file of at most
    :data:`~mrae.inputs.LABEL_LIMIT` bytes); DataError naming the line that is not UTF-8."""
    return inputs.read_text(path, LABEL_LIMIT)


def parse_number(text: str, where: str, what: str) -> float:
    """A finite float; DataError ``"<where>: <what> 'text' is not a number"`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {what} {text!r} is not a finite number")
    return value


def parse_integer(text: str, where: str, what: str) -> int:
    """A whole number (``3`` or ``3.0``); DataError otherwise."""
    value = parse_number(text, where, what)
    if not value.is_integer():
        raise DataError(f"{where}: {what} {text!r} is not an integer")
    return int(value)


def count_values(n: int) -> str:
    """``"1 value"``, ``"5 values"``: for the errors that say how many values a line has."""
    return f"{n} value" if n == 1 else f"{n} values"
