"""Why AP is low: TIDE's error breakdown of a detector's results (Bolya et al. 2020, "TIDE: A
General Toolbox for Identifying Object Detection Errors", ECCV; the definitions of its code,
tidecv 1.0.1 ``quantify.py`` and ``errors/main_errors.py``).

Per image and class, the detections (best first, at most ``max_dets``) are matched to the
ground truth as COCO matches them at IoU ``pos_thresh`` (0.5): each takes the unmatched GT box of
its class it overlaps most, if that IoU is >= 0.5. Every detection left unmatched is one error,
the first of these that applies (TIDE's order), with IoU_max its largest IoU with a GT box:

- ``bkg`` (background): the image has no GT box, or IoU_max over every GT box < ``bg_thresh`` (0.1);
  (tested after the three below);
- ``loc`` (localisation): ``bg_thresh`` <= IoU_max < ``pos_thresh`` with a GT box of its class;
- ``cls`` (classification): IoU_max >= ``pos_thresh`` with a GT box of another class;
- ``dupl`` (duplicate): IoU_max >= ``pos_thresh`` with a GT box of its class that a
  higher-scoring detection already took;
- ``both`` (classification and localisation): none of these (``bg_thresh`` <= IoU_max <
  ``pos_thresh`` with a box of another class);
- ``miss`` (missed): a GT box no detection matched and no ``cls`` or ``loc`` error points at.

The weight of each type is its dAP: the AP50 after fixing every error of that type alone, minus
the AP50 as it is (clipped at 0, as TIDE does). Fixing a ``cls`` or ``loc`` error makes it a true
positive of its GT box when that box was not matched and the error is the best-scoring ``cls`` or
``loc`` error pointing at it (else the detection is removed); ``dupl``, ``bkg`` and ``both``
errors are removed; a ``miss`` is removed from the GT count. AP50 is TIDE's: per class, COCO's
101-point interpolated precision at IoU 0.5; the mean over classes with a GT box or a detection
(a class detected but absent scores 0, where COCO leaves it out).

Crowd GT boxes (``iscrowd``) are TIDE's ignore regions: a detection of the same class left
unmatched whose crowd IoU (pycocotools': the detection's area inside the crowd box) is > 0.5 is
neither counted nor an error (tidecv still files it under an error type). All boxes in original
image pixels, COCO ``[x, y, w, h]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

#: The error types, in the order tables print them.
ERROR_TYPES: tuple[str, ...] = ("cls", "loc", "both", "dupl", "bkg", "miss")
#: What each type means, for tables and the results page.
ERROR_TITLES: dict[str, str] = {
    "cls": "classification",
    "loc": "localisation",
    "both": "cls + loc",
    "dupl": "duplicate",
    "bkg": "background",
    "miss": "missed",
}
POS_THRESH = 0.5  # TIDE's foreground IoU
BG_THRESH = 0.1  # TIDE's background IoU


def error_breakdown(
    coco_gt: COCO,
    results: Sequence[Mapping[str, Any]],
    image_ids: Sequence[int],
    max_dets: int = 100,
    pos_thresh: float = POS_THRESH,
    bg_thresh: float = BG_THRESH,
) -> dict[str, float]:
    """TIDE's breakdown of ``results`` (COCO results) against ``coco_gt`` over ``image_ids``.

    Returns ``TIDE_AP50`` (the AP50 before fixing, a fraction), ``dAP_<type>`` (a fraction: the
    AP50 gained by fixing every error of the type) and ``errors_<type>`` (how many) for each of
    :data:`ERROR_TYPES`.
    """
    by_image: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for det in results:
        by_image[int(det["image_id"])].append(det)
    points: list[tuple[int, float, bool]] = []  # (class, score, true positive) of counted detections
    gt_count: dict[int, int] = defaultdict(int)
    errors: list[dict[str, Any]] = []  # {"type", "point": index into points or None, "gt", ...}
    best: dict[tuple[int, int], tuple[float, int]] = {}  # GT (image, index) -> (score, error index)
    for image_id in sorted(set(int(i) for i in image_ids)):
        _image_errors(coco_gt, image_id, by_image.get(image_id, []), max_dets, pos_thresh,
                      bg_thresh, points, gt_count, errors, best)

    base = _mean_ap(points, gt_count)
    metrics = {"TIDE_AP50": base}
    for kind in ERROR_TYPES:
        fixed = _fix(points, gt_count, errors, best, kind)
        metrics[f"dAP_{kind}"] = max(_mean_ap(*fixed) - base, 0.0)
    for kind in ERROR_TYPES:
        metrics[f"errors_{kind}"] = float(sum(e["type"] == kind for e in errors))
    return metrics


def _image_errors(coco_gt: COCO, image_id: int, dets: list[Mapping[str, Any]], max_dets: int,
                  pos: float, bg: float, points: list, gt_count: dict, errors: list,
                  best: dict) -> None:
    """Match one image's detections, append its counted detections to ``points`` and its errors."""
    anns = coco_gt.imgToAnns.get(image_id, [])
    gts = [a for a in anns if not a.get("iscrowd")]
    crowds = [a for a in anns if a.get("iscrowd")]
    for a in gts:
        gt_count[int(a["category_id"])] += 1
    dets = sorted(dets, key=lambda d: -float(d["score"]))[:max_dets]  # stable: ties keep their order
    gt_cls = np.array([int(a["category_id"]) for a in gts], dtype=np.int64)
    det_cls = np.array([int(d["category_id"]) for d in dets], dtype=np.int64)
    iou = _iou(dets, gts, crowd=False)  # [D, G]
    same = det_cls[:, None] == gt_cls[None, :]
    used = np.zeros(len(gts), dtype=bool)
    matched = np.full(len(dets), -1)
    for d in range(len(dets)):
        candidates = np.where(same[d] & ~used, iou[d], 0.0)
        if len(gts) and candidates.max() >= pos:
            g = int(candidates.argmax())
            used[g], matched[d] = True, g
    crowd_iou = _iou(dets, crowds, crowd=True)
    crowd_cls = np.array([int(a["category_id"]) for a in crowds], dtype=np.int64)
    pointed = np.zeros(len(gts), dtype=bool)  # GT boxes a cls or loc error points at
    for d, det in enumerate(dets):
        cls, score = int(det_cls[d]), float(det["score"])
        if matched[d] >= 0:
            points.append((cls, score, True))
            continue
        if len(crowds) and np.any((crowd_iou[d] > pos) & (crowd_cls == cls)):
            continue  # inside an ignore region of its class: not counted, not an error
        points.append((cls, score, False))
        error: dict[str, Any] = {"point": len(points) - 1, "class": cls, "score": score}
        kind, g = _classify(iou[d], same[d], used, pos, bg)
        error["type"] = kind
        if kind in ("cls", "loc"):
            error["gt"] = (image_id, g)
            error["gt_class"] = int(gt_cls[g])
            error["gt_used"] = bool(used[g])
            if not used[g]:
                pointed[g] = True
                key = (image_id, g)
                if key not in best or best[key][0] < score:  # TIDE's BestGTMatch: the first best
                    best[key] = (score, len(errors))
        errors.append(error)
    for g in np.flatnonzero(~used & ~pointed):
        errors.append({"type": "miss", "point": None, "class": int(gt_cls[g])})


def _classify(iou: np.ndarray, same: np.ndarray, used: np.ndarray, pos: float,
              bg: float) -> tuple[str, int]:
    """The error type of an unmatched detection from its IoU [G] with the image's GT boxes, and
    the GT box it points at (-1: none), in TIDE's order of tests."""
    if iou.size == 0:
        return "bkg", -1
    own = np.where(same, iou, 0.0)
    g = int(own.argmax())
    if bg <= own[g] < pos:
        return "loc", g
    other = np.where(same, 0.0, iou)
    g = int(other.argmax())
    if other[g] >= pos:
        return "cls", g
    taken = np.where(used, own, 0.0)
    if taken.max() >= pos:
        return "dupl", int(taken.argmax())
    if iou.max() < bg:
        return "bkg", -1
    return "both", -1


def _fix(points: list, gt_count: dict, errors: list, best: dict,
         kind: str) -> tuple[list, dict]:
    """``(points, gt_count)`` with every error of ``kind`` fixed (see the module docstring)."""
    points, gt_count = list(points), dict(gt_count)
    removed = set()
    for index, error in enumerate(errors):
        if error["type"] != kind:
            continue
        if kind == "miss":
            gt_count[error["class"]] -= 1
            continue
        if kind in ("cls", "loc") and not error["gt_used"] and best[error["gt"]][1] == index:
            points[error["point"]] = (error["gt_class"], error["score"], True)
        else:
            removed.add(error["point"])
    return [p for i, p in enumerate(points) if i not in removed], gt_count


def _mean_ap(points: list[tuple[int, float, bool]], gt_count: Mapping[int, int]) -> float:
    """TIDE's AP50: the mean over classes with a GT box or a detection of COCO's 101-point
    interpolated AP of the class's detections (class, score, true positive)."""
    by_class: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for cls, score, positive in points:
        by_class[cls].append((score, positive))
    classes = sorted(set(by_class) | {c for c, n in gt_count.items() if n > 0})
    if not classes:
        return 0.0
    return float(np.mean([_ap(by_class.get(c, []), gt_count.get(c, 0)) for c in classes]))


def _ap(points: list[tuple[float, bool]], positives: int) -> float:
    if positives <= 0 or not points:
        return 0.0
    scores = np.array([s for s, _ in points], dtype=np.float64)
    hits = np.array([t for _, t in points], dtype=bool)[np.argsort(-scores, kind="stable")]
    true = np.cumsum(hits)
    precision = true / np.arange(1, len(hits) + 1)
    recall = true / positives
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # no dips: max over higher recall
    thresholds = np.linspace(0.0, 1.0, 101)
    index = np.searchsorted(recall, thresholds, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)], 0.0)
    return float(sampled.mean())


def _iou(dets: list[Mapping[str, Any]], gts: list[Mapping[str, Any]], crowd: bool) -> np.ndarray:
    """pycocotools' box IoU [D, G] of COCO ``bbox`` lists (``crowd``: the crowd form, IoA of the
    detection)."""
    if not dets or not gts:
        return np.zeros((len(dets), len(gts)))
    iou = mask_utils.iou([list(map(float, d["bbox"])) for d in dets],
                         [list(map(float, g["bbox"])) for g in gts], [int(crowd)] * len(gts))
    return np.asarray(iou, dtype=np.float64).reshape(len(dets), len(gts))
