"""The labels read become COCO categories and annotations: classes kept, merged or ignored
(:mod:`mrae.data.class_map`), difficult objects flagged or ignored, boxes clipped to their image."""

from __future__ import annotations

import math
from typing import Any

from mrae.data.class_map import ClassMap
from mrae.data.convert.report import Report
from mrae.data.formats.common import Label
from mrae.errors import DataError

DIFFICULT = ("flag", "ignore")


def build_annotations(
    images: list[dict[str, Any]], per_image: list[list[Label]], class_names: list[str] | None,
    classes: ClassMap, difficult: str, report: Report,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(categories, annotations)`` of the COCO dict from each image's labels (``per_image``,
    in the order of ``images``); ``class_names`` None: the names found, sorted. Counts what it
    drops, clips and ignores in ``report``."""
    if class_names is None:  # dota, voc without --names: the names found, sorted
        class_names = sorted({lab.category for labs in per_image for lab in labs
                              if isinstance(lab.category, str)})  # fmt: skip
    category_id = {name: i + 1 for i, name in enumerate(classes.categories(class_names))}
    all_ids = list(category_id.values())

    annotations: list[dict[str, Any]] = []
    for image, labs in zip(images, per_image, strict=True):
        for lab in labs:
            name = _class_name(lab, class_names, report)
            ignore = lab.ignore or (difficult == "ignore" and bool(lab.extra.get("difficult")))
            if name is None or classes.is_ignored(name):
                ids, ignore = all_ids, True
            else:
                target = classes.target(name)
                if target is None:
                    report.dropped_classes += 1
                    continue
                ids = [category_id[target]]
            bbox = _clip(lab.box, image["width"], image["height"], report)
            if bbox is None or not ids:
                continue
            report.ignore_regions += ignore
            for cat in ids:
                ann = {"id": len(annotations) + 1, "image_id": image["id"], "category_id": cat,
                       "bbox": bbox, "area": round(bbox[2] * bbox[3], 3),
                       "iscrowd": int(ignore), **lab.extra}  # fmt: skip
                if ignore:
                    ann["ignore"] = 1
                annotations.append(ann)

    return [{"id": i, "name": n} for n, i in category_id.items()], annotations


def _class_name(lab: Label, class_names: list[str], report: Report) -> str | None:
    """The class name of a label (an index looked up in ``class_names``); None: every class."""
    if lab.category is None or isinstance(lab.category, str):
        if isinstance(lab.category, str) and lab.category not in class_names:
            raise DataError(
                f"{lab.where}: class {lab.category!r} is not in {report.names_file} "
                f"({len(class_names)} names); add it there or fix the label"
            )
        return lab.category
    return class_names[lab.category]


def _clip(box: tuple[float, float, float, float], width: int, height: int,
          report: Report) -> list[float] | None:
    """``[x, y, w, h]`` of ``box`` (x1 y1 x2 y2) clipped to the image, 0.001 px; None: dropped."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        report.dropped_empty += 1
        return None
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    cx1, cy1, cx2, cy2 = (round(v, 3) for v in (cx1, cy1, cx2, cy2))
    if cx2 <= cx1 or cy2 <= cy1:
        report.dropped_outside += 1
        return None
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        report.clipped += 1
    w, h = round(cx2 - cx1, 3), round(cy2 - cy1, 3)
    while cx1 + w > width:  # float rounding must not put the box past the edge
        w = math.nextafter(w, 0.0)
    while cy1 + h > height:
        h = math.nextafter(h, 0.0)
    return [_plain(cx1), _plain(cy1), _plain(w), _plain(h)]


def _plain(value: float) -> float | int:
    """Whole numbers as ints, so the JSON reads ``[40, 15, 20, 20]``."""
    return int(value) if value.is_integer() else value
