"""evaluate_model past 100 detections (maxDets, the model's cap), its TIDE breakdown, and AP per
condition (mrae.evaluation.groups)."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
from pycocotools.cocoeval import COCOeval

from mrae.errors import ConfigError, DataError
from mrae.evaluation.coco_metrics import coco_metrics
from mrae.evaluation.evaluator import evaluate_model
from mrae.evaluation.groups import image_groups, parse_group_by, parse_group_key
from mrae.evaluation.options import check_max_dets, parse_max_dets
from mrae.evaluation.tide import ERROR_TYPES
from tests.evaluation.test_evaluator import FakeDetector, dataset, gt_outputs  # noqa: F401


def cocoeval_ap(coco_gt, detections, image_ids) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), "bbox")
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def top_per_image_and_class(detections, k):
    """COCOeval's maxDets: the best k detections of each (image, category)."""
    kept, seen = [], {}
    for d in sorted(detections, key=lambda d: -d["score"]):
        key = (d["image_id"], d["category_id"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= k:
            kept.append(d)
    return kept


def test_ap_at_each_max_dets_is_cocoevals_on_the_top_k(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset, jitter=2.0, false_positives=8, seed=3))
    metrics, detections = evaluate_model(model, dataset, progress=False, max_dets=(1, 2, 3))
    ids = list(dataset.ids)
    for k in (1, 2, 3):
        assert metrics[f"AR{k}"] >= (metrics[f"AR{k - 1}"] if k > 1 else 0.0)
    assert metrics["AP"] == pytest.approx(cocoeval_ap(dataset.coco, top_per_image_and_class(detections, 3), ids), abs=1e-12)
    at_one = coco_metrics(dataset.coco, top_per_image_and_class(detections, 1), ids)["AP"]
    assert coco_metrics(dataset.coco, detections, ids, (1,))["AP"] == pytest.approx(at_one, abs=1e-12)
    assert "AR10" not in metrics and "AP@100" not in metrics  # only the maxDets asked for
    assert math.isnan(metrics["AP_medium"]) is False


def test_ap_at_100_and_past_it(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset, jitter=2.0, false_positives=8, seed=3))
    metrics, _ = evaluate_model(model, dataset, progress=False, max_dets=(100, 300, 1500))
    assert metrics["AP@100"] == metrics["AP@300"] == metrics["AP@1500"] == metrics["AP"]  # < 100 an image
    assert {"AR100", "AR300", "AR1500"} <= set(metrics)


def test_max_dets_over_the_models_cap_is_refused_before_it_runs(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset))
    model.detections_per_img = 100
    with pytest.raises(ConfigError, match="over the model's cap of 100"):
        evaluate_model(model, dataset, progress=False, max_dets=(100, 300))
    assert model.calls == 0


@pytest.mark.parametrize(("values", "message"), [
    ((), "no value"), ((0, 10), ">= 1"), ((-5,), ">= 1"), ((10, 1), "increasing"),
    ((10, 10), "increasing"), ((1, 2.5), "whole number"),
])
def test_bad_max_dets(values, message):
    with pytest.raises(ConfigError, match=message):
        check_max_dets(values)


def test_parse_max_dets():
    assert parse_max_dets("100, 300,1500") == (100, 300, 1500)
    for text in ("", "a,b", "1,,2"):
        with pytest.raises(ConfigError):
            parse_max_dets(text)


def test_error_breakdown_is_in_the_metrics(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset, jitter=2.5, false_positives=6))
    metrics, _ = evaluate_model(model, dataset, progress=False)
    assert metrics["TIDE_AP50"] == pytest.approx(metrics["AP50"], abs=1e-9)  # both classes have GT
    assert {f"dAP_{k}" for k in ERROR_TYPES} <= set(metrics)
    assert metrics["errors_bkg"] > 0
    metrics, _ = evaluate_model(FakeDetector(gt_outputs(dataset)), dataset, progress=False, errors=False)
    assert "TIDE_AP50" not in metrics


# ---- groups -------------------------------------------------------------------------------------

HITUAV = [{"id": i, "file_name": name} for i, name in enumerate(
    ["0_60_30_0_00001.jpg", "1_60_90_0_00002.jpg", "1_120_90_0_00003.jpg", "other.jpg"], start=1)]


def test_named_groups_of_the_file_name():
    group_by = parse_group_by(r"^(?P<light>[01])_(?P<altitude>\d+)_(?P<angle>\d+)_")
    groups = image_groups(group_by, HITUAV)
    assert groups == {"light": {"0": [1], "1": [2, 3]}, "altitude": {"60": [1, 2], "120": [3]},
                      "angle": {"30": [1], "90": [2, 3]}}  # numbers in numeric order; other.jpg in none


def test_a_field_of_the_image_record():
    images = [{"id": 1, "weather": "fog"}, {"id": 2, "weather": "sun"}, {"id": 3}]
    assert image_groups(parse_group_by("weather:"), images) == {"weather": {"fog": [1], "sun": [2]}}
    by_field = parse_group_by("weather:^(?P<w>f)")
    assert image_groups(by_field, images) == {"w": {"f": [1]}}


@pytest.mark.parametrize(("text", "message"), [
    ("(?P<light>[01]", "not a regular expression"), (r"^\d_", "no named group"), ("", "empty"),
])
def test_bad_expressions(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_group_by(text)


def test_an_expression_that_matches_nothing():
    with pytest.raises(DataError, match="matches none of the 4 images"):
        image_groups(parse_group_by("^(?P<x>night)"), HITUAV)


def test_group_ap_is_cocoevals_on_the_groups_images(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset, jitter=2.0, false_positives=5, seed=2))
    group_by = parse_group_by(r"^000(?P<half>[12])|^000(?P<rest>\d)")
    metrics, detections = evaluate_model(model, dataset, progress=False, group_by=group_by)
    first = [d for d in detections if d["image_id"] in (1, 2)]
    assert metrics["AP[half=1]"] == pytest.approx(cocoeval_ap(dataset.coco, [d for d in first if d["image_id"] == 1], [1]))
    assert metrics["images[half=2]"] == 1.0
    assert set(k for k in metrics if k.startswith("AP[rest=")) == {"AP[rest=3]", "AP[rest=4]"}
    assert math.isnan(metrics["AP[rest=3]"])  # image 3 has no ground truth
    assert parse_group_key("AP50[half=1]") == ("AP50", "half", "1")
    assert parse_group_key("AP_tiny") is None


def test_no_match_is_refused_before_the_model_runs(dataset):  # noqa: F811
    model = FakeDetector(gt_outputs(dataset))
    with pytest.raises(DataError, match="matches none"):
        evaluate_model(model, dataset, progress=False, group_by=parse_group_by("^(?P<x>night)"))
    assert model.calls == 0
