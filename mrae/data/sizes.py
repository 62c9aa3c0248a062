"""Object size buckets, shared by `mrae subset`, `mrae stats` and the evaluation.

Every bucket is an area range ``(lo, hi)`` in square pixels, the form COCOeval takes as
``params.areaRng``. Counting here is half-open, ``lo <= area < hi``, so every box falls in exactly
one bucket (COCOeval itself tests ``lo <= area <= hi``; the difference is only boxes whose area is
exactly on a boundary).

- COCO's buckets are by area: small < 32^2, medium 32^2..96^2, large >= 96^2.
- The tiny-object buckets are by the box side ``sqrt(w * h)`` in pixels: very tiny < 8 px,
  tiny 8..16 px, small 16..32 px; as areas: < 64, 64..256, 256..1024.
"""

from __future__ import annotations

from collections.abc import Mapping

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
