"""benchmarks/host_positives.py: the positives that each host's own matching gives an object."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "bench_host_positives", Path(__file__).parents[1] / "benchmarks" / "host_positives.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# one 20x20 box centred on (20, 20), one 6x6 box between the points of a stride-8 grid
TARGETS = [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0], [41.0, 41.0, 47.0, 47.0]]),
            "labels": torch.tensor([1, 2])}]


def test_fcos_points_inside_the_box_and_its_centre_region():
    # stride 8: points at multiples of 8; inside the 20x20 box and within 12 px of its centre:
    # x, y in {16, 24}: 4. The 6x6 box holds no point of the grid: none.
    c2 = bench.measure(bench.ROWS["FCOS, single C2"], TARGETS, (300, 512))
    assert c2["stride"] == "8" and c2["anchors"] == 64 * 40
    assert c2["mean"] == pytest.approx((4 + 0) / 2) and c2["none"] == pytest.approx(0.5)
    # stride 4 (MRAE's map): within 6 px of the centre: x, y in {16, 20, 24}: 9; the small box:
    # x, y in {44}: 1
    mrae = bench.measure(bench.ROWS["FCOS, MRAE template 2"], TARGETS, (300, 512))
    assert mrae["stride"] == "4" and mrae["anchors"] == 128 * 80
    assert mrae["mean"] == pytest.approx((9 + 1) / 2) and mrae["none"] == 0.0
    assert mrae["by_size"]["0-8 px"] == (pytest.approx(1.0), 1)
    assert mrae["by_size"]["16-32 px"] == (pytest.approx(9.0), 1)


def test_anchor_hosts_give_every_box_its_best_anchor():
    # the Matcher's low-quality matches: no box is left without a positive
    for row in ("RetinaNet, single C2", "Faster R-CNN RPN, single C2"):
        result = bench.measure(bench.ROWS[row], TARGETS, (300, 512))
        assert result["none"] == 0.0 and result["anchors"] == 64 * 40 * 12


def test_training_targets_reads_coco_boxes_as_xyxy(tmp_path):
    path = tmp_path / "instances_train.json"
    path.write_text(json.dumps({
        "images": [{"id": 2, "width": 512, "height": 300}, {"id": 1, "width": 512, "height": 300}],
        "annotations": [{"image_id": 1, "bbox": [10, 20, 5, 6], "category_id": 3, "iscrowd": 0},
                        {"image_id": 2, "bbox": [0, 0, 4, 4], "category_id": 1, "iscrowd": 1}],
        "categories": []}))
    targets, size = bench.training_targets(path, 5)
    assert size == (300, 512)
    assert targets[0]["boxes"].tolist() == [[10.0, 20.0, 15.0, 26.0]]
    assert targets[0]["labels"].tolist() == [3]
    assert targets[1]["boxes"].shape == (0, 4)  # crowd boxes are not objects to learn
