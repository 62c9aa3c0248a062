"""benchmarks/coco_eval_speed.py: the padded file and the agreement measure (the timing itself
needs faster-coco-eval, not a dependency, and is not run in tests)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

_path = Path(__file__).parents[1] / "benchmarks" / "coco_eval_speed.py"
_spec = importlib.util.spec_from_file_location("bench_coco_eval", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

GT = {"images": [{"id": 1}, {"id": 2}, {"id": 3}],
      "annotations": [{"image_id": 1, "bbox": [10, 10, 20, 10], "category_id": 4},
                      {"image_id": 2, "bbox": [0, 0, 8, 8], "category_id": 5}]}


def test_densify_pads_each_image_with_ground_truth_below_every_real_score():
    real = [{"image_id": 1, "category_id": 4, "bbox": [10, 10, 20, 10], "score": 0.3}]
    padded = bench.densify(GT, real, per_image=6)
    assert padded[:1] == real
    counts = {i: sum(d["image_id"] == i for d in padded) for i in (1, 2, 3)}
    assert counts == {1: 6, 2: 6, 3: 0}  # image 3 has no ground truth to copy
    extra = padded[1:]
    assert all(d["score"] < 0.3 for d in extra)
    assert {d["category_id"] for d in extra if d["image_id"] == 2} == {5}
    assert all(abs(d["bbox"][0] - 10) <= 0.3 * 20 for d in extra if d["image_id"] == 1)
    assert bench.densify(GT, real, per_image=6) == padded  # seeded


def test_largest_difference_counts_nan_only_where_both_are_nan():
    assert bench.largest_difference({"a": 0.5, "b": math.nan}, {"a": 0.25, "b": math.nan}) == 0.25
    assert bench.largest_difference({"a": 0.5}, {"a": math.nan}) == math.inf
