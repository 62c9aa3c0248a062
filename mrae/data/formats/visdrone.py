"""VisDrone-DET labels: ``x,y,w,h,score,category,truncation,occlusion`` per line.

Categories 1..10 keep their VisDrone ids and names (:data:`VISDRONE_CLASSES`). Category 0 (ignored
regions) becomes one ignore region *per category* (COCOeval matches crowd regions within a
category only, and VisDrone ignores every class there); ``score 0`` marks an object as an ignore
region of its own category. Category 11 (others) follows ``others`` (``--visdrone-others``):
``ignore`` (default: like category 0), ``drop``, or ``class`` (an 11th category). ``truncation``
and ``occlusion`` are kept as keys.
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

#: VisDrone-DET categories 1..10; 0 is "ignored regions", 11 "others".
VISDRONE_CLASSES = ("pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle",
                    "awning-tricycle", "bus", "motor")  # fmt: skip
VISDRONE_OTHERS = ("ignore", "drop", "class")


def read_visdrone(path: Path, image: dict[str, Any], options: ReadOptions) -> Found:
    """The boxes of a VisDrone-DET label file, and how many "others" it dropped (``others="drop"``)."""
    others = options.visdrone_others
    found, dropped = [], 0
    for number, line in numbered_lines(path):
        where = f"{path} line {number}"
        fields = [f.strip() for f in line.rstrip(",").split(",")]
        if len(fields) != 8:
            raise DataError(f"{where}: expected 8 comma-separated values 'x,y,w,h,score,category,"
                            f"truncation,occlusion', found {count_values(len(fields))}")
        x, y, w, h = (parse_number(v, where, "box value") for v in fields[:4])
        score, category, truncation, occlusion = (parse_integer(v, where, name) for v, name in zip(
            fields[4:], ("score", "category", "truncation", "occlusion"), strict=True))
        if not 0 <= category <= 11:
            raise DataError(f"{where}: category {category} is not a VisDrone-DET category 0..11")
        extra = {"truncation": truncation, "occlusion": occlusion}
        box = (x, y, x + w, y + h)
        if category == 0:  # ignored region: every class
            found.append(Label(None, box, where, ignore=True, extra=extra))
        elif category == 11 and others == "drop":
            dropped += 1
        elif category == 11 and others == "ignore":
            found.append(Label(None, box, where, ignore=True, extra=extra))
        else:
            found.append(Label(category - 1, box, where, ignore=score == 0, extra=extra))
    return Found(found, dropped=dropped)
