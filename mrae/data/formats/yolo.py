"""YOLO txt labels: one ``class cx cy w h`` line per object, normalised to 0..1.

A line may also be a segment ``class x1 y1 x2 y2 ...``: its bounding box is the object's. Class
``k`` is category ``k + 1``, named by ``--names`` (``classes.txt`` / ``obj.names``: one per line;
or a ``data.yaml`` with ``names:``), looked for beside the labels (:func:`find_names_file`) when
not given.
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
    parse_number,
)
from mrae.errors import DataError

#: Class-names files looked for (in this order) beside the YOLO labels when --names is not given.
NAMES_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
#: YOLO values above this are not normalised (pixels, most likely).
_YOLO_MAX = 1.01


def read_yolo(path: Path, image: dict[str, Any], options: ReadOptions) -> Found:
    """The boxes of a YOLO label file of ``image``, class indices into ``options.names``."""
    width, height, names = image["width"], image["height"], options.names
    found = []
    for number, line in numbered_lines(path):
        where = f"{path} line {number}"
        fields = line.split()
        if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
            raise DataError(f"{where}: expected 'class cx cy w h' (or a segment 'class x1 y1 x2 y2 "
                            f"x3 y3 ...'), found {count_values(len(fields))}")
        cls = parse_number(fields[0], where, "class")
        values = [parse_number(v, where, "coordinate") for v in fields[1:]]
        if not cls.is_integer() or not 0 <= cls < len(names):
            raise DataError(f"{where}: class {fields[0]} is not an index 0..{len(names) - 1} of the "
                            f"{len(names)} class names")
        if max(abs(v) for v in values) > _YOLO_MAX:
            raise DataError(f"{where}: coordinates must be normalised to 0..1 by the image size "
                            f"({width} x {height}), found {max(values, key=abs):g}")
        if len(fields) == 5:
            cx, cy, w, h = values
            box = ((cx - w / 2) * width, (cy - h / 2) * height,
                   (cx + w / 2) * width, (cy + h / 2) * height)  # fmt: skip
        else:
            xs, ys = values[0::2], values[1::2]
            box = (min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height)
        found.append(Label(int(cls), box, where))
    return Found(found)


def find_names_file(labels_dir: Path) -> Path | None:
    """The first of :data:`NAMES_FILES` in the labels folder or its parent; None when there is none."""
    for folder in (labels_dir, labels_dir.parent):
        for name in NAMES_FILES:
            if (folder / name).is_file():
                return folder / name
    return None
