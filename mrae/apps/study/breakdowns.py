"""The results page's breakdowns of each row's AP, from the results JSON alone: AP in AI-TOD's size
buckets (and at each maxDets past 100), TIDE's error breakdown, and AP per condition.

Each section is there only where a row's final metrics hold its numbers (runs evaluated since
:mod:`mrae.evaluation.tide` and :mod:`mrae.evaluation.groups` exist; the group-by expression is
the rows' ``eval.group_by``), so a page rendered from an older JSON is unchanged. Cells are the
mean over seeds ± the sample standard deviation, x100, as in the main table.
"""

from __future__ import annotations

import re
from typing import Any

from mrae.apps.study.tables import metric_cell
from mrae.evaluation.groups import parse_group_key
from mrae.evaluation.tide import ERROR_TITLES, ERROR_TYPES
from mrae.tables import markdown_table

_BUCKETS = ("AP_verytiny", "AP_tiny", "AP_small", "AP_medium")
_BUCKET_TITLES = ("very tiny (< 8 px)", "tiny (8-16 px)", "small (16-32 px)", "medium (>= 32 px)")


def breakdown_sections(results: dict[str, Any]) -> list[str]:
    """The page's lines of the three sections (each ends with an empty line); none without data."""
    rows = [e for e in results["rows"] if e.get("seeds")]
    return [*_bucket_section(rows), *_error_section(rows), *_group_section(rows)]


def _bucket_section(rows: list[dict]) -> list[str]:
    rows = [e for e in rows if "AP_medium" in e["mean"]]
    if not rows:
        return []
    past = sorted({int(k[3:]) for e in rows for k in e["mean"] if re.fullmatch(r"AP@\d+", k)
                   and int(k[3:]) > 100})
    header = ["row", "AP", *_BUCKET_TITLES, *(f"AP@{k}" for k in past)]
    body = [[e["name"], metric_cell(e, "AP"), *(metric_cell(e, k) for k in _BUCKETS),
             *(metric_cell(e, f"AP@{k}") for k in past)] for e in rows]
    return ["## AP by object size (AI-TOD's buckets)", "",
            "AP@[.5:.95] x100 of the ground-truth boxes whose side sqrt(area) falls in each of "
            "AI-TOD's buckets (original-image pixels), at the evaluation's largest maxDets"
            + (", and AP at each maxDets past 100" if past else "") + ".", "",
            markdown_table(header, body), ""]


def _error_section(rows: list[dict]) -> list[str]:
    rows = [e for e in rows if "TIDE_AP50" in e["mean"]]
    if not rows:
        return []
    header = ["row", "AP50", *(f"dAP {ERROR_TITLES[k]}" for k in ERROR_TYPES)]
    body = [[e["name"], metric_cell(e, "TIDE_AP50"), *(metric_cell(e, f"dAP_{k}") for k in ERROR_TYPES)]
            for e in rows]
    return ["## Why AP is low: the error breakdown", "",
            "TIDE's error types (Bolya et al. 2020; `mrae.evaluation.tide`): dAP is the AP50 x100 "
            "gained by fixing every error of a type alone (a wrong class, a box between IoU 0.1 and "
            "0.5, both, a duplicate, a detection on background, a missed object); the largest says "
            "what limits the row most.", "",
            markdown_table(header, body), ""]


def _group_section(rows: list[dict]) -> list[str]:
    groupings: dict[str, list[str]] = {}
    for entry in rows:
        for key in entry["mean"]:
            parsed = parse_group_key(key)
            if parsed is not None and parsed[0] == "AP":
                values = groupings.setdefault(parsed[1], [])
                if parsed[2] not in values:
                    values.append(parsed[2])
    if not groupings:
        return []
    lines = ["## AP per condition", "",
             "AP@[.5:.95] x100 over the val images of each condition (`eval.group_by`, "
             "`mrae.evaluation.groups`); the images of each in the header.", ""]
    for name, values in groupings.items():
        images = {v: _images(rows, name, v) for v in values}
        header = ["row", *(f"{name} {v} ({images[v]} img)" for v in values)]
        body = [[e["name"], *(metric_cell(e, f"AP[{name}={v}]") for v in values)]
                for e in rows if any(f"AP[{name}={v}]" in e["mean"] for v in values)]
        lines += [markdown_table(header, body), ""]
    return lines


def _images(rows: list[dict], name: str, value: str) -> str:
    counts = {int(e["mean"][f"images[{name}={value}]"]) for e in rows
              if f"images[{name}={value}]" in e["mean"]}
    return "/".join(str(c) for c in sorted(counts)) or "?"
