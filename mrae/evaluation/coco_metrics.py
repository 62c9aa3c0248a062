"""The COCO metric of a detector's results and the markdown rows the paper's tables are made of.

- :func:`coco_metrics`: one pycocotools ``COCOeval`` (bbox) over the evaluated images, summarised
  here (:func:`summarize`) for any maxDets: ``AP, AP50, AP75, APs, APm`` at the largest maxDets,
  ``AR<k>`` at each maxDets ``k``, ``ARs, ARm`` at the largest, ``AP@<k>`` at each maxDets from
  100 up, and the AI-TOD buckets ``AP_verytiny, AP_tiny, AP_small, AP_medium`` (box side < 8,
  8..16, 16..32, >= 32 px; :data:`mrae.data.sizes.AITOD_AREA_RANGES`) at the largest maxDets, all
  fractions in [0, 1]. With COCO's maxDets (1, 10, 100) the COCO names are exactly COCOeval's
  ``stats`` 0-4 and 6-10 (a test); with AI-TOD's (1, 100, 1500) the buckets are AI-TOD's
  evaluator's ``AP_vt, AP_t, AP_s, AP_m``. "The largest maxDets" is COCOeval's own rule
  (``summarize`` reads AP at ``maxDets[-1]``; its AP50/AP75 read ``maxDets[2]``, the same only
  with three values, which is why the summary is ours);
- :func:`tiny_bucket_ap`: AP@[.5:.95] per area range of a given set of ranges;
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

from mrae.choices import TABLE_COLUMNS
from mrae.data.sizes import AITOD_AREA_RANGES, COCO_AREA_RANGES, ORIGINAL_PIXELS
from mrae.evaluation.options import COCO_MAX_DETS, check_max_dets
from mrae.tables import separator, table_row

_TITLES = {
    "ms_per_image": "ms",
    "AP_verytiny": "AP very tiny (<8 px)",
    "AP_tiny": "AP tiny (8-16 px)",
    "AP_small": "AP small (16-32 px)",
    "AP_medium": "AP medium (>=32 px)",
}

#: What the size buckets count, printed under the evaluation's tables.
SIZE_NOTE = (
    f"Size buckets (APs, APm, ARs, ARm, very tiny, tiny, small, medium) count {ORIGINAL_PIXELS} "
    "(the annotations' 'area'), not the model's resized input."
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
    coco_gt: COCO,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    max_dets: Sequence[int] = COCO_MAX_DETS,
    buckets: Mapping[str, tuple[float, float]] = AITOD_AREA_RANGES,
) -> dict[str, float]:
    """COCOeval (bbox) over ``image_ids`` at ``max_dets`` (checked, :func:`check_max_dets`), with
    COCO's area ranges and ``buckets``: the metrics of the module docstring, fractions; NaN where
    COCO gives -1. One ``evaluate`` and ``accumulate`` for every area range."""
    max_dets = check_max_dets(max_dets, what="max_dets")
    ranges = {**COCO_AREA_RANGES, **{f"bucket_{name}": r for name, r in buckets.items()}}
    evaluator = _run_cocoeval(
        coco_gt, load_results(coco_gt, results), image_ids,
        area_ranges=[[float(lo), float(hi)] for lo, hi in ranges.values()],
        area_labels=list(ranges), max_dets=max_dets,
    )
    return summarize(evaluator, buckets)


def summarize(evaluator: COCOeval,
              buckets: Mapping[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """The metrics of an accumulated ``evaluator`` whose area labels include ``all``, ``small``
    and ``medium`` (and ``bucket_<name>`` for each of ``buckets``), at its ``params.maxDets``:
    each the mean of COCOeval's ``precision`` [T, R, K, A, M] or ``recall`` [T, K, A, M] entries
    > -1, as ``COCOeval.summarize`` takes them; NaN where there are none."""
    buckets = buckets or {}
    params = evaluator.params
    labels, max_dets = list(params.areaRngLbl), list(params.maxDets)
    precision, recall = evaluator.eval["precision"], evaluator.eval["recall"]
    last = len(max_dets) - 1

    def ap(area: str = "all", m: int = last, iou: float | None = None) -> float:
        values = precision[:, :, :, labels.index(area), m]
        if iou is not None:
            values = values[np.where(np.isclose(params.iouThrs, iou))[0]]
        return _mean(values)

    def ar(area: str = "all", m: int = last) -> float:
        return _mean(recall[:, :, labels.index(area), m])

    metrics = {"AP": ap(), "AP50": ap(iou=0.5), "AP75": ap(iou=0.75), "APs": ap("small"),
               "APm": ap("medium")}
    metrics.update({f"AR{k}": ar(m=m) for m, k in enumerate(max_dets)})
    metrics.update({"ARs": ar("small"), "ARm": ar("medium")})
    metrics.update({f"AP_{name}": ap(f"bucket_{name}") for name in buckets})
    metrics.update({f"AP@{k}": ap(m=m) for m, k in enumerate(max_dets) if k >= 100})
    return metrics


def tiny_bucket_ap(
    coco_gt: COCO,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    ranges: Mapping[str, tuple[float, float]] = AITOD_AREA_RANGES,
    max_dets: Sequence[int] = COCO_MAX_DETS,
) -> dict[str, float]:
    """AP@[.5:.95] at the largest ``max_dets`` per area range: ``{"AP_<name>": AP}``, NaN for a
    bucket without GT. Ranges are in px^2 of the annotations' ``area`` field, both ends included
    (COCOeval's rule)."""
    max_dets = check_max_dets(max_dets, what="max_dets")
    evaluator = _run_cocoeval(
        coco_gt, load_results(coco_gt, results), image_ids,
        area_ranges=[[float(lo), float(hi)] for lo, hi in ranges.values()],
        area_labels=list(ranges), max_dets=max_dets,
    )
    precision = evaluator.eval["precision"]  # [T iou, R recall, K class, A area, M maxDets]
    return {f"AP_{name}": _mean(precision[:, :, :, a, -1]) for a, name in enumerate(ranges)}


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
    max_dets: Sequence[int] = COCO_MAX_DETS,
) -> COCOeval:
    evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    evaluator.params.imgIds = sorted(set(image_ids))
    evaluator.params.maxDets = [int(k) for k in max_dets]
    if area_ranges is not None:
        evaluator.params.areaRng = area_ranges
        evaluator.params.areaRngLbl = area_labels
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _mean(values: np.ndarray) -> float:
    """COCOeval's summary of an array: the mean of its entries > -1; NaN (not -1) without any."""
    values = values[values > -1]
    return float(np.mean(values)) if values.size else math.nan
