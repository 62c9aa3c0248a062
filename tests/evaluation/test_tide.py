"""TIDE's error breakdown (mrae.evaluation.tide) on hand-made detections, one error type each."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrae.evaluation.tide import ERROR_TYPES, error_breakdown

A, B = 1, 2  # category ids


def coco(boxes: dict[int, list[tuple[list[float], int] | tuple[list[float], int, int]]]) -> COCO:
    """A COCO ground truth: image id -> [(xywh, category[, iscrowd])]."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 200, "height": 200} for i in boxes]
    anns = []
    for image_id, objects in boxes.items():
        for obj in objects:
            bbox, cat, crowd = (*obj, 0)[:3]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                         "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": crowd})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": A, "name": "a"}, {"id": B, "name": "b"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def det(bbox, cat, score, image_id=1):
    return {"image_id": image_id, "category_id": cat, "bbox": bbox, "score": score}


def breakdown(gt: COCO, dets: list) -> dict[str, float]:
    return error_breakdown(gt, dets, sorted(gt.getImgIds()))


def only(metrics: dict[str, float], kind: str, count: int = 1) -> None:
    """``count`` errors of ``kind`` and none of another type (misses aside where said)."""
    for other in ERROR_TYPES:
        assert metrics[f"errors_{other}"] == (count if other == kind else 0), other


A1, A2, B1 = [0, 0, 10, 10], [30, 0, 10, 10], [50, 50, 10, 10]
SHIFTED = [4, 0, 10, 10]  # IoU 60 / 140 = 0.43 with A1: between 0.1 and 0.5


def test_perfect_detections_have_no_error():
    m = breakdown(coco({1: [(A1, A), (B1, B)]}), [det(A1, A, 0.9), det(B1, B, 0.8)])
    assert m["TIDE_AP50"] == 1.0
    only(m, "none", 0)
    assert all(m[f"dAP_{k}"] == 0.0 for k in ERROR_TYPES)


def test_classification_error_fixed_by_the_right_class():
    m = breakdown(coco({1: [(A1, A)]}), [det(A1, B, 0.9)])
    only(m, "cls")  # the GT box it points at is not counted as missed
    assert m["TIDE_AP50"] == 0.0
    assert m["dAP_cls"] == 1.0  # class a found; class b (detected, absent) left without points


def test_localisation_error_fixed_by_the_gt_box():
    m = breakdown(coco({1: [(A1, A)]}), [det(SHIFTED, A, 0.9)])
    only(m, "loc")
    assert (m["TIDE_AP50"], m["dAP_loc"]) == (0.0, 1.0)


def test_both_error_removed_and_its_gt_missed():
    # class b: the both error (0.9) above a true positive (0.5): AP_b 0.5; class a: missed, AP 0
    m = breakdown(coco({1: [(A1, A), (B1, B)]}), [det(SHIFTED, B, 0.9), det(B1, B, 0.5)])
    assert (m["errors_both"], m["errors_miss"]) == (1, 1)
    assert sum(m[f"errors_{k}"] for k in ERROR_TYPES) == 2
    assert m["TIDE_AP50"] == pytest.approx(0.25)
    assert m["dAP_both"] == pytest.approx(0.25)  # AP_b 1
    assert m["dAP_miss"] == pytest.approx(0.25)  # class a without GT and detections: left out


def test_duplicate_removed():
    dets = [det(A1, A, 0.9), det([1, 0, 10, 10], A, 0.8), det(A2, A, 0.7)]  # IoU 0.82 with A1
    m = breakdown(coco({1: [(A1, A), (A2, A)]}), dets)
    only(m, "dupl")
    # precision 1 up to recall 0.5 (51 of COCO's 101 recall points), 2/3 after
    assert m["TIDE_AP50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert m["dAP_dupl"] == pytest.approx(1 - m["TIDE_AP50"])


def test_background_error_removed():
    m = breakdown(coco({1: [(A1, A)]}), [det([80, 80, 10, 10], A, 0.95), det(A1, A, 0.5)])
    only(m, "bkg")
    assert (m["TIDE_AP50"], m["dAP_bkg"]) == (pytest.approx(0.5), pytest.approx(0.5))


def test_detection_on_an_image_without_gt_is_background():
    m = breakdown(coco({1: [(A1, A)], 2: []}), [det(A1, A, 0.5), det(A1, A, 0.9, image_id=2)])
    only(m, "bkg")


def test_missed_gt_removed_from_the_count():
    m = breakdown(coco({1: [(A1, A), (A2, A)]}), [det(A1, A, 0.9)])
    only(m, "miss")
    assert m["TIDE_AP50"] == pytest.approx(51 / 101)
    assert m["dAP_miss"] == pytest.approx(1 - 51 / 101)


def test_only_the_best_error_per_gt_becomes_a_true_positive():
    # two localisation errors on one GT box: the better is fixed, the other removed
    m = breakdown(coco({1: [(A1, A)]}), [det(SHIFTED, A, 0.9), det([0, 4, 10, 10], A, 0.8)])
    only(m, "loc", 2)
    assert m["dAP_loc"] == 1.0


def test_detection_inside_a_crowd_box_of_its_class_is_ignored():
    gt = coco({1: [(A1, A), ([100, 100, 60, 60], A, 1)]})
    m = breakdown(gt, [det(A1, A, 0.5), det([110, 110, 10, 10], A, 0.9)])
    only(m, "none", 0)
    assert m["TIDE_AP50"] == 1.0


def test_max_dets_keeps_the_best_per_image():
    dets = [det(A1, A, 0.9), det([80, 80, 10, 10], A, 0.1)]
    m = error_breakdown(coco({1: [(A1, A)]}), dets, [1], max_dets=1)
    only(m, "none", 0)


def test_base_ap50_is_cocoevals_ap50():
    rng = np.random.default_rng(0)
    boxes, dets = {}, []
    for image_id in range(1, 7):
        objects = []
        for _ in range(6):
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(6, 40, 2)
            objects.append(([x, y, w, h], int(rng.integers(1, 3))))
            jitter = rng.uniform(-0.25, 0.25, 4) * [w, h, w, h]
            cat = objects[-1][1] if rng.random() > 0.25 else 3 - objects[-1][1]
            dets.append(det(list(np.add([x, y, w, h], jitter)), cat, float(rng.random()), image_id))
        for _ in range(3):
            x, y = rng.uniform(0, 150, 2)
            dets.append(det([x, y, 12.0, 12.0], int(rng.integers(1, 3)), float(rng.random()), image_id))
        boxes[image_id] = objects
    gt = coco(boxes)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    m = breakdown(gt, dets)
    assert 0.1 < m["TIDE_AP50"] < 0.9
    assert m["TIDE_AP50"] == pytest.approx(evaluator.stats[1], abs=1e-9)
    assert all(m[f"errors_{k}"] > 0 for k in ("cls", "loc", "bkg", "miss")), m
