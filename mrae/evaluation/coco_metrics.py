"""The COCO metric of a detector's results and the markdown rows the paper's tables are made of.

- :func:`coco_metrics`: pycocotools' ``COCOeval`` (bbox) over the evaluated images: ``AP, AP50,
  AP75, APs, APm, AR1, AR10, AR100, ARs, ARm`` (``stats`` 0, 1, 2, 3, 4, 6, 7, 8, 9, 10), as
  fractions in [0, 1];
- :func:`tiny_bucket_ap`: ``AP_verytiny, AP_tiny, AP_small``, AP@[.5:.95] of a second ``COCOeval``
  whose area ranges are the tiny-object buckets of :mod:`mrae.data.sizes` (box side < 8, 8..16,
  16..32 px);
- :func:`table_header`, :data:`TABLE_HEADER`, :func:`markdown_row`: the paper's Table 2 as markdown.

A metric without ground truth to measure it (COCOeval's -1, e.g. ``APm`` on a small-only dataset)
is NaN, never -1. Like COCOeval, the area ranges use each ground-truth annotation's ``area`` field
(for real COCO that is the segmentation mask's area, smaller than the box's ``w * h``; files
without one get ``w * h`` from :func:`mrae.data.validate.load_coco_json`), with both ends included,
in **original-image pixels** (:data:`SIZE_NOTE`).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrae.choices import COCO_STATS, TABLE_COLUMNS
from mrae.data.sizes import ORIGINAL_PIXELS, TINY_AREA_RANGES
from mrae.tables import separator, table_row

_TITLES = {
    "ms_per_image": "ms",
    "AP_verytiny": "AP very tiny (<8 px)",
    "AP_tiny": "AP tiny (8-16 px)",
    "AP_small": "AP small (16-32 px)",
}

#: What the size buckets count, printed under the evaluation's tables.
SIZE_NOTE = (
    f"Size buckets (APs, APm, ARs, ARm, tiny, small) count {ORIGINAL_PIXELS} (the annotations' "
    "'area'), not the model's resized input."
)


def load_results(coco_gt: COCO, results: list[dict[str, Any]]) -> COCO:
    """``coco_gt.loadRes(results)`` that also takes an empty list (COCOeval then gives AP 0)."""
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes(results)
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": list(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


def coco_metrics(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: Sequence[int]
) -> dict[str, float]:
    """COCOeval (bbox) over ``image_ids``: the Table 2 metrics, fractions; NaN where COCO gives -1."""
    evaluator = _run_cocoeval(coco_gt, load_results(coco_gt, results), image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.summarize()
    return {name: _nan_if_missing(evaluator.stats[i]) for name, i in COCO_STATS.items()}


def tiny_bucket_ap(
    coco_gt: COCO,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    ranges: Mapping[str, tuple[float, float]] = TINY_AREA_RANGES,
) -> dict[str, float]:
    """AP@[.5:.95] (100 detections) per area range: ``{"AP_<name>": AP}``, NaN for a bucket without GT.

    The same number as COCOeval's ``summarize`` gives for an ``areaRng`` entry: the mean of
    ``eval["precision"][:, :, :, a, maxDets=100]`` over its entries > -1. Ranges are in px^2 of
    the annotations' ``area`` field, both ends included (COCOeval's rule).
    """
    evaluator = _run_cocoeval(
        coco_gt,
        load_results(coco_gt, results),
        image_ids,
        area_ranges=[[float(lo), float(hi)] for lo, hi in ranges.values()],
        area_labels=list(ranges),
    )
    precision = evaluator.eval["precision"]  # [T iou, R recall, K class, A area, M maxDets]
    max_dets = evaluator.params.maxDets.index(100)
    metrics = {}
    for a, name in enumerate(ranges):
        values = precision[:, :, :, a, max_dets]
        values = values[values > -1]
        metrics[f"AP_{name}"] = float(np.mean(values)) if values.size else math.nan
    return metrics


def table_header(columns: Sequence[str] = TABLE_COLUMNS, name: str = "model") -> str:
    """The two header lines of a markdown table with ``columns`` after a ``name`` column."""
    titles = [_TITLES.get(c, c) for c in columns]
    return table_row([name, *titles]) + "\n" + separator(len(columns) + 1)


#: Header of the paper's Table 2: AP, AP50, AP75, APs, APm, AR1, AR10, AR100, ARs, ARm, ms.
TABLE_HEADER = table_header()


def markdown_row(name: str, metrics: Mapping[str, Any], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A markdown table row: AP, AR and recall x100 with one decimal (the paper's form), ms as is.

    A metric that is missing, None or NaN prints as ``-``.
    """
    cells = [name]
    for column in columns:
        value = metrics.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            cells.append("-")
        elif column == "ms_per_image":
            cells.append(f"{value:.1f}")
        else:
            cells.append(f"{100.0 * value:.1f}")
    return table_row(cells)


def _run_cocoeval(
    coco_gt: COCO,
    coco_dt: COCO,
    image_ids: Sequence[int],
    area_ranges: list[list[float]] | None = None,
    area_labels: list[str] | None = None,
) -> COCOeval:
    evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    evaluator.params.imgIds = sorted(set(image_ids))
    if area_ranges is not None:
        evaluator.params.areaRng = area_ranges
        evaluator.params.areaRngLbl = area_labels
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _nan_if_missing(value: float) -> float:
    return math.nan if value < 0 else float(value)
