"""AP per condition: the evaluated images grouped by their file names or a field of their records.

One option, ``[FIELD:]REGEX`` (``mrae eval --group-by``, ``eval.group_by``):

- ``REGEX`` with named groups is searched in each image record's ``FIELD`` (default
  ``file_name``); each named group is one grouping, its matched text the image's value. HIT-UAV's
  names ``{day 0 / night 1}_{altitude m}_{camera angle deg}_{...}_{frame}`` give
  ``^(?P<light>[01])_(?P<altitude>\\d+)_(?P<angle>\\d+)_``: AP by light, by altitude and by angle;
- ``FIELD:`` (no regex) groups by the field's whole value (e.g. ``weather:`` for a dataset whose
  image records carry ``"weather": "fog"``).

An image the regex does not match (or without the field) is in no group. :func:`group_metrics`
gives ``AP[name=value]``, ``AP50[name=value]`` (COCOeval over that group's images, at the
evaluation's largest maxDets) and ``images[name=value]``, values in natural order (numbers by
value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pycocotools.coco import COCO

from mrae.errors import DataError
from mrae.evaluation.coco_metrics import coco_metrics
from mrae.evaluation.options import COCO_MAX_DETS, GroupBy, parse_group_by

__all__ = ["GroupBy", "group_metrics", "image_groups", "parse_group_by", "parse_group_key"]

def image_groups(group_by: GroupBy, images: Sequence[Mapping[str, Any]],
                 source: str = "the dataset") -> dict[str, dict[str, list[int]]]:
    """Grouping name -> value -> the ids of ``images`` (COCO image records) with that value.

    Raises DataError when the expression matches none of ``images``.
    """
    groups: dict[str, dict[str, list[int]]] = {name: {} for name in group_by.names}
    for image in images:
        value = image.get(group_by.field)
        if value is None:
            continue
        if group_by.pattern is None:
            groups[group_by.field].setdefault(str(value), []).append(int(image["id"]))
            continue
        found = group_by.pattern.search(str(value))
        if found is None:
            continue
        for name, text in found.groupdict().items():
            if text is not None:
                groups[name].setdefault(text, []).append(int(image["id"]))
    if not any(groups.values()):
        example = images[0].get(group_by.field) if images else None
        raise DataError(f"the group-by expression {group_by.text!r} matches none of the {len(images)} images of "
                        f"{source} (field {group_by.field!r}, e.g. {example!r}); fix the expression")
    return {name: dict(sorted(values.items(), key=lambda kv: _natural(kv[0])))
            for name, values in groups.items()}


def group_metrics(coco_gt: COCO, results: list[dict[str, Any]],
                  groups: Mapping[str, Mapping[str, Sequence[int]]],
                  max_dets: Sequence[int] = COCO_MAX_DETS) -> dict[str, float]:
    """``AP[name=value]``, ``AP50[name=value]`` and ``images[name=value]`` of every group."""
    metrics: dict[str, float] = {}
    for name, values in groups.items():
        for value, ids in values.items():
            wanted = set(ids)
            subset = [d for d in results if d["image_id"] in wanted]
            measured = coco_metrics(coco_gt, subset, ids, max_dets, buckets={})
            key = f"{name}={value}"
            metrics[f"AP[{key}]"] = measured["AP"]
            metrics[f"AP50[{key}]"] = measured["AP50"]
            metrics[f"images[{key}]"] = float(len(ids))
    return metrics


def parse_group_key(key: str) -> tuple[str, str, str] | None:
    """``"AP50[light=0]"`` -> ``("AP50", "light", "0")``; None for a key of another form."""
    found = re.fullmatch(r"(AP|AP50|images)\[([^=\]]+)=(.*)\]", key)
    return (found.group(1), found.group(2), found.group(3)) if found else None


def _natural(value: str) -> tuple:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)
