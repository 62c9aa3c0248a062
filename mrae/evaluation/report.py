"""The tables ``mrae eval`` prints beside the paper's: AP and AR at each maxDets, TIDE's error
breakdown, AP per group. Each is markdown built from an evaluation's metrics dict alone, and the
empty string where the metrics hold nothing for it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mrae.evaluation.groups import parse_group_key
from mrae.evaluation.options import COCO_MAX_DETS
from mrae.evaluation.tide import ERROR_TITLES, ERROR_TYPES
from mrae.tables import markdown_table


def max_dets_table(name: str, metrics: Mapping[str, Any], max_dets: Sequence[int]) -> str:
    """AP@k (k >= 100) and AR<k> at each maxDets, x100; empty for COCO's (1, 10, 100), which the
    paper's table already shows."""
    if tuple(max_dets) == COCO_MAX_DETS:
        return ""
    columns = [f"AP@{k}" for k in max_dets if k >= 100] + [f"AR{k}" for k in max_dets]
    return markdown_table(["model", *columns], [[name, *(_percent(metrics.get(c)) for c in columns)]])


def error_table(name: str, metrics: Mapping[str, Any]) -> str:
    """TIDE's breakdown: AP50 and, per error type, its dAP x100 and count ("6.8 (1290)")."""
    if "TIDE_AP50" not in metrics:
        return ""
    header = ["model", "AP50", *(f"dAP {ERROR_TITLES[k]}" for k in ERROR_TYPES)]
    cells = [name, _percent(metrics["TIDE_AP50"])]
    for kind in ERROR_TYPES:
        count = metrics.get(f"errors_{kind}")
        cells.append(f"{_percent(metrics.get(f'dAP_{kind}'))}"
                     + (f" ({int(count)})" if count is not None else ""))
    note = ("TIDE's error breakdown (Bolya et al. 2020): the AP50 gained by fixing every error of "
            "a type alone, x100 (errors of the type).")
    return markdown_table(header, [cells]) + "\n" + note


def group_table(metrics: Mapping[str, Any], group_by: str | None = None) -> str:
    """One table per grouping: its values with images, AP and AP50 x100."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in metrics.items():
        parsed = parse_group_key(key)
        if parsed is not None:
            metric, name, group = parsed
            groups.setdefault(name, {}).setdefault(group, {})[metric] = value
    tables = []
    for name, values in groups.items():
        rows = [[group, f"{int(v.get('images', 0))}", _percent(v.get("AP")), _percent(v.get("AP50"))]
                for group, v in values.items()]
        tables.append(markdown_table([name, "images", "AP", "AP50"], rows))
    if not tables:
        return ""
    head = f"AP per group ({group_by}):" if group_by else "AP per group:"
    return head + "\n\n" + "\n\n".join(tables)


def _percent(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.1f}"
