"""The study's tables in markdown, from the results JSON's rows: the page's main table, the
README's short one, and the cells and row selections the page's other parts share.
"""

from __future__ import annotations

from typing import Any

from mrae.apps.study.facts import OTHER_HOSTS, PAPER_HOST, host_of
from mrae.tables import markdown_table as write_table

METRIC_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "AR1", "AR10", "AR100", "ARs", "ARm")
HEADLINE_COLUMNS = ("AP", "AP50", "APs", "AR100")


def start_reference(rows: list[dict], start: dict) -> dict | None:
    """The row a row of role ``start`` is compared with: the first row of another role whose model
    settings equal its own apart from ``pretrained`` (the study file checks that it exists)."""
    def trunk_free(entry: dict) -> dict:
        return {k: v for k, v in (entry.get("model") or {}).items() if k != "pretrained"}

    return next((e for e in rows if e.get("role") != "start" and trunk_free(e) == trunk_free(start)),
                None)


def paper_rows(rows: list[dict]) -> list[dict]:
    """The rows of the paper's host (Faster R-CNN): the main table, the plots' lines, the README."""
    return [e for e in rows if host_of(e) == PAPER_HOST]


def study_hosts(results: dict[str, Any]) -> list[str]:
    """The hosts of the study's rows; a JSON written before they were kept: Faster R-CNN and the
    host study's (its rows may not have run yet)."""
    return list(results.get("hosts") or (PAPER_HOST, *OTHER_HOSTS))


def metric_cell(entry: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    """``51.0 ± 1.2``: the row's mean of `key` times `scale`, with its sample standard deviation
    where the row has several seeds; ``–`` where the mean is missing or NaN."""
    mean = entry["mean"].get(key)
    if mean is None or mean != mean:  # None / NaN: no ground truth in this bucket
        return "–"
    text = f"{mean * scale:.{digits}f}"
    std = entry["std"].get(key)
    if len(entry["seeds"]) > 1 and std is not None:
        text += f" ± {std * scale:.{digits}f}"
    return text


def markdown_table(rows: list[dict]) -> str:
    """The study table: Table 2's columns (x100), then ms/image, parameters and GFLOPs."""
    return _table(rows, METRIC_COLUMNS, model_size=True)


def headline_table(rows: list[dict]) -> str:
    """The README's short table: AP, AP50, APs, AR100 (x100) and ms/img of every row."""
    return _table(rows, HEADLINE_COLUMNS, model_size=False)


def _table(rows: list[dict], metric_columns: tuple[str, ...], model_size: bool) -> str:
    """A markdown table of `metric_columns` (x100) and ms/img per row; with `model_size`, also
    parameters and GFLOPs. A row whose every seed diverged says so in each cell."""
    sizes = ["params (M)", "GFLOPs"] if model_size else []
    header = ["row", "seeds", *metric_columns, "ms/img", *sizes]
    body = []
    for entry in rows:
        name = entry["name"]
        if entry.get("diverged"):
            name += f" ({len(entry['diverged'])} diverged)"
        if not entry["seeds"]:
            body.append([name, "0", *["diverged"] * (len(header) - 2)])
            continue
        cells = [name, str(len(entry["seeds"]))]
        cells += [metric_cell(entry, key) for key in metric_columns]
        ms = entry.get("ms_per_image")
        cells.append(f"{ms:.0f}" if ms is not None else metric_cell(entry, "ms_per_image", 1.0, 0))
        if model_size:
            params = entry["mean"].get("params_M")
            cells += [
                "–" if params is None else f"{params:.1f}",  # the same for every seed
                # varies a little: the box head runs on each proposal
                metric_cell(entry, "GFLOPs", 1.0, 1),
            ]
        body.append(cells)
    return write_table(header, body)
