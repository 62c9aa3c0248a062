"""DOTA labels: ``x1 y1 ... x4 y4 class [difficult]`` per line.

Optional ``imagesource:`` / ``gsd:`` lines before the objects are kept on the image; an object's
box is the bounding box of its polygon; ``difficult`` objects keep a ``"difficult": 1`` key. Class
names come from ``--names`` or, sorted, from the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrae.data.formats.common import (
    Found,
    Label,
    ReadOptions,
    count_values,
    numbered_lines,
    parse_integer,
    parse_number,
)
from mrae.errors import DataError


def read_dota(path: Path, image: dict[str, Any], options: ReadOptions) -> Found:
    """The boxes of a DOTA label file; its ``imagesource`` and ``gsd`` go into ``image``."""
    found = []
    for number, line in numbered_lines(path):
        where = f"{path} line {number}"
        key, _, value = line.partition(":")
        if key.strip().lower() in ("imagesource", "gsd") and not found:
            value = value.strip()
            if key.strip().lower() == "gsd":
                image["gsd"] = (None if value.lower() in ("", "null", "none")
                                else parse_number(value, where, "gsd"))  # finite: valid JSON
            else:
                image["imagesource"] = value
            continue
        fields = line.split()
        if len(fields) not in (9, 10):
            raise DataError(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult', found "
                            f"{count_values(len(fields))}")
        coords = [parse_number(v, where, "coordinate") for v in fields[:8]]
        difficult = parse_integer(fields[9], where, "difficult") if len(fields) == 10 else 0
        xs, ys = coords[0::2], coords[1::2]
        found.append(Label(fields[8], (min(xs), min(ys), max(xs), max(ys)), where,
                           extra={"difficult": int(difficult != 0)}))
    return Found(found)
