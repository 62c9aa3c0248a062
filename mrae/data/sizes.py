"""Object size buckets, shared by `mrae subset`, `mrae stats` and the evaluation.

Every bucket is an area range ``(lo, hi)`` in square pixels, the form COCOeval takes as
``params.areaRng``. Counting here is half-open, ``lo <= area < hi``, so every box falls in exactly
one bucket (COCOeval itself tests ``lo <= area <= hi``; the difference is only boxes whose area is
exactly on a boundary).

- COCO's buckets are by area: small < 32^2, medium 32^2..96^2, large >= 96^2.
- The tiny-object buckets are by the box side ``sqrt(w * h)`` in pixels: very tiny < 8 px,
  tiny 8..16 px, small 16..32 px; as areas: < 64, 64..256, 256..1024.

Which pixels: ``mrae stats`` and the evaluation count **original-image pixels** (the annotation
file's boxes and ``area``, the scale a user measures objects in); ``mrae anchors`` counts
**resized pixels** (the model's input after its ``min_size``/``max_size`` resize, the scale the
anchors meet the objects at). :func:`shrink_warning` tells ``mrae train`` when that resize
makes the typical object too small to find.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: COCOeval's upper bound of an area range ("no limit").
AREA_MAX = 1e5**2

#: The paper's small-object threshold: bbox area w * h below 32 x 32 px.
SMALL_AREA = 32.0**2

#: COCO's area ranges (COCOeval's default ``areaRng``), name -> (lo, hi) in px^2.
COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, AREA_MAX),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, AREA_MAX),
}

#: The tiny-object area ranges, name -> (lo, hi) in px^2 (sides 8, 16, 32 px squared).
TINY_AREA_RANGES: dict[str, tuple[float, float]] = {
    "verytiny": (0.0, 8.0**2),
    "tiny": (8.0**2, 16.0**2),
    "small": (16.0**2, 32.0**2),
}

#: AI-TOD's evaluation buckets (Wang et al. 2021, "Tiny Object Detection in Aerial Images"; the
#: area ranges of its evaluator, jwwangchn/cocoapi-aitod ``aitodpycocotools/cocoeval.py``,
#: ``Params.setDetParams``): the tiny buckets above and ``medium`` from 32 px up, without an upper
#: bound (the paper's text says 32-64 px: no AI-TOD object is larger). Not COCO's medium (32-96).
AITOD_AREA_RANGES: dict[str, tuple[float, float]] = {
    **TINY_AREA_RANGES,
    "medium": (32.0**2, AREA_MAX),
}

#: Wording that says which pixels a size counts, for command outputs.
ORIGINAL_PIXELS = "original-image pixels"
RESIZED_PIXELS = "resized (model input) pixels"

#: ``mrae train`` warns when the resize makes the median training box smaller than this (px).
SHRINK_WARNING_SIDE = 8.0

#: How tables print the bucket names.
BUCKET_LABELS: dict[str, str] = {
    "all": "all",
    "small": "small",
    "medium": "medium",
    "large": "large",
    "verytiny": "very tiny",
    "tiny": "tiny",
}


def bucket_counts(areas: np.ndarray, ranges: Mapping[str, tuple[float, float]]) -> dict[str, int]:
    """Count ``areas`` (float array [K], px^2) per bucket, ``lo <= area < hi``.

    Returns name -> count in the order of ``ranges``. An "all" bucket counts every area.
    """
    areas = np.asarray(areas, dtype=np.float64)
    return {
        name: int(np.count_nonzero((areas >= lo) & (areas < hi)))
        for name, (lo, hi) in ranges.items()
    }


def bucket_label(name: str, ranges: Mapping[str, tuple[float, float]]) -> str:
    """A table label such as ``"tiny (8-16 px)"`` for the bucket ``name`` of ``ranges``."""
    lo, hi = ranges[name]
    side_lo, side_hi = int(round(lo**0.5)), int(round(hi**0.5))
    label = BUCKET_LABELS.get(name, name)
    if hi >= AREA_MAX:
        return f"{label} (>= {side_lo} px)" if lo > 0 else label
    if lo <= 0:
        return f"{label} (< {side_hi} px)"
    return f"{label} ({side_lo}-{side_hi} px)"


def shrink_warning(
    data: Mapping[str, Any],
    min_size: float,
    max_size: float,
    fixed_size: Sequence[int] | None = None,
    threshold: float = SHRINK_WARNING_SIDE,
    tile: Sequence[int] | None = None,
) -> str | None:
    """A one-line warning when the model's resize shrinks the median training box below ``threshold``.

    Args:
        data: a checked COCO instances dict (:func:`mrae.data.validate.load_coco_json`): boxes
            ``[x, y, w, h]`` in original-image pixels, each image's ``width`` and ``height``.
        min_size, max_size, fixed_size: the model's resize (``model.min_size`` etc.), applied as
            :func:`mrae.data.anchors.resize_boxes` (torchvision's rule) does.
        threshold: box side ``sqrt(w * h)`` in resized pixels.
        tile: ``data.train_crop`` when ``data.crop_scale`` is ``tile``: the model resizes tiles of
            this size, not whole images, so the boxes are scaled as a tile is.

    Returns:
        None when the median non-crowd box is at least ``threshold`` px after the resize, when
        the resize does not shrink it, or when there are no boxes; else the warning, which says
        the median before and after and what to change.
    """
    from mrae.data.anchors import resize_boxes

    sizes = {img["id"]: (img["height"], img["width"]) for img in data["images"]}
    anns = [a for a in data["annotations"] if not a.get("iscrowd")]
    if not anns:
        return None
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    image_hw = np.array([sizes[a["image_id"]] for a in anns], dtype=np.float64)
    fixed = tuple(int(v) for v in fixed_size) if fixed_size is not None else None
    tiles = tuple(int(v) for v in tile) if tile is not None else None
    resized, _ = resize_boxes(boxes, image_hw, min_size, max_size, fixed, tiles)
    before = float(np.median(np.sqrt(boxes[:, 2] * boxes[:, 3])))
    after = float(np.median(np.sqrt(resized[:, 2] * resized[:, 3])))
    if after >= threshold or after >= before:
        return None
    factor = min(threshold / after, before / after)  # to the threshold, or no shrink at all
    if fixed is not None:
        resize = f"model.fixed_size {list(fixed)}"
        change = f"model.fixed_size=[{math.ceil(fixed[0] * factor)},{math.ceil(fixed[1] * factor)}]"
    else:
        resize = f"model.min_size {min_size:g}, model.max_size {max_size:g}"
        change = f"model.min_size={math.ceil(min_size * factor)} model.max_size={math.ceil(max_size * factor)}"
    if tiles is not None:
        resize += f", of the data.train_crop {tiles[0]}x{tiles[1]} tiles"
    return (
        f"warning: the model's resize ({resize}) shrinks the median training box from "
        f"{before:.1f} to {after:.1f} px (sqrt(w*h)), below {threshold:g} px where objects are "
        f"hard to find; enlarge the input (e.g. {change}, with data.train_crop to keep steps "
        "small) or cut the images into tiles (slicing)"
    )
