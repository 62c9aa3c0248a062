"""Sliced inference: the tile grid, boxes mapped back, merging across tiles, the full pass, flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrae.errors import ConfigError
from mrae.evaluation.slicing import (
    SliceOptions,
    merge_detections,
    parse_tile_size,
    sliced_detect,
    tile_grid,
)


class PixelDetector:
    """A fake detector that "sees" painted objects: channel 0 holds ``label / 10`` on an object's
    pixels (0 elsewhere); per label present in an input it returns the tight box of those pixels
    (input px) with score = pixel count / 1e4. Records the shapes of every call."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, ...]]] = []

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append([tuple(image.shape) for image in images])
        outputs = []
        for image in images:
            codes = torch.round(image[0] * 10).long()
            boxes, scores, labels = [], [], []
            for label in sorted(set(codes.unique().tolist()) - {0}):
                ys, xs = torch.nonzero(codes == label, as_tuple=True)
                boxes.append([xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1])
                scores.append(len(xs) / 1e4)
                labels.append(label)
            outputs.append({
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "scores": torch.tensor(scores, dtype=torch.float32),
                "labels": torch.tensor(labels, dtype=torch.int64),
            })
        return outputs


def paint(height: int, width: int, objects: list[tuple[int, tuple[int, int, int, int]]]) -> torch.Tensor:
    """Image [3, H, W] with each (label, (x0, y0, x1, y1)) painted as label / 10 in channel 0."""
    image = torch.zeros(3, height, width)
    for label, (x0, y0, x1, y1) in objects:
        image[0, y0:y1, x0:x1] = label / 10
    return image


def as_set(output: dict[str, torch.Tensor]) -> set[tuple]:
    return {
        (int(label), tuple(round(v, 3) for v in box))
        for box, label in zip(output["boxes"].tolist(), output["labels"].tolist(), strict=True)
    }


# ----------------------------------------------------------------------------- the grid


@pytest.mark.parametrize(
    ("height", "width", "tile_h", "tile_w", "overlap"),
    [(1536, 2048, 300, 512, 0.2), (1080, 1920, 256, 256, 0.0), (301, 513, 300, 512, 0.5),
     (1000, 700, 128, 200, 0.9), (97, 1000, 300, 512, 0.25)],
)
def test_grid_covers_every_pixel_with_the_stated_overlap(height, width, tile_h, tile_w, overlap):
    tiles = tile_grid(height, width, tile_h, tile_w, overlap)
    covered = np.zeros((height, width), dtype=np.int32)
    for y0, x0, y1, x1 in tiles:
        assert 0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width
        assert y1 - y0 == min(tile_h, height) and x1 - x0 == min(tile_w, width)  # native size
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    for starts, tile, size in (
        (sorted({t[0] for t in tiles}), tile_h, height),
        (sorted({t[1] for t in tiles}), tile_w, width),
    ):
        assert starts[0] == 0 and min(starts[-1] + tile, size) == size  # last one ends at the border
        for a, b in zip(starts, starts[1:], strict=False):
            assert tile - (b - a) >= round(overlap * tile)  # neighbours share at least the overlap
        if len(starts) > 2:  # all but the shifted last step exactly by tile - overlap
            assert starts[1] - starts[0] == tile - round(overlap * tile)


def test_image_smaller_than_a_tile_is_one_tile():
    assert tile_grid(100, 200, 300, 512, 0.2) == [(0, 0, 100, 200)]
    assert tile_grid(300, 512, 300, 512, 0.2) == [(0, 0, 300, 512)]


@pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
def test_grid_refuses_an_overlap_outside_0_1(overlap):
    with pytest.raises(ConfigError, match="overlap"):
        tile_grid(100, 100, 10, 10, overlap)


def test_tile_size_parsing():
    assert parse_tile_size("300x512") == (300, 512)
    assert parse_tile_size("64X96") == (64, 96)
    for bad in ("0x512", "300", "x", "-3x4", "3.5x4", "axb", ""):
        with pytest.raises(ConfigError, match="--slice"):
            parse_tile_size(bad)


# ----------------------------------------------------------------------------- detection


def test_boxes_map_back_by_the_tile_offset_exactly():
    known = [3.25, 4.5, 13.75, 20.0]  # the box the fake detector reports in every tile

    def detector(images):
        return [{"boxes": torch.tensor([known]), "scores": torch.tensor([0.9]),
                 "labels": torch.tensor([1])} for _ in images]

    image = torch.zeros(3, 250, 400)
    options = SliceOptions(tile_h=100, tile_w=160, overlap=0.25, batch_size=3)
    output = sliced_detect(detector, image, options)
    expected = {
        (1, tuple(round(v, 3) for v in (known[0] + x0, known[1] + y0, known[2] + x0, known[3] + y0)))
        for y0, x0, _, _ in tile_grid(250, 400, 100, 160, 0.25)
    }
    assert as_set(output) == expected
    assert output["boxes"].dtype == torch.float32 and output["labels"].dtype == torch.int64


def test_tiles_are_cut_at_native_resolution_in_batches():
    detector = PixelDetector()
    options = SliceOptions(tile_h=100, tile_w=120, overlap=0.2, batch_size=4)
    sliced_detect(detector, torch.zeros(3, 300, 500), options)
    tiles = tile_grid(300, 500, 100, 120, 0.2)
    assert [len(call) for call in detector.calls] == [4] * (len(tiles) // 4) + ([len(tiles) % 4] if len(tiles) % 4 else [])
    assert {shape for call in detector.calls for shape in call} == {(3, 100, 120)}


def test_object_in_the_overlap_comes_out_once_with_nms():
    # tiles along x: [0, 120) and [80, 200); the object lies wholly in the shared strip
    image = paint(100, 200, [(1, (90, 30, 110, 50))])
    for merge in ("nms", "greedy"):
        output = sliced_detect(PixelDetector(), image, SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3, merge=merge))
        assert as_set(output) == {(1, (90.0, 30.0, 110.0, 50.0))}


def test_object_cut_by_both_tiles_comes_back_whole_with_greedy_merging():
    # the object (x 60..140) is wider than the shared strip (80..120): no tile sees it whole
    image = paint(100, 200, [(1, (60, 30, 140, 50)), (2, (10, 70, 20, 80))])
    options = SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3, merge="greedy", match_metric="ios")
    output = sliced_detect(PixelDetector(), image, options)
    assert as_set(output) == {(1, (60.0, 30.0, 140.0, 50.0)), (2, (10.0, 70.0, 20.0, 80.0))}
    # NMS keeps both halves (IoU 40/80 = 0.5, not above the threshold)
    nms = sliced_detect(PixelDetector(), image, SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3))
    assert as_set(nms) == {(1, (60.0, 30.0, 120.0, 50.0)), (1, (80.0, 30.0, 140.0, 50.0)),
                           (2, (10.0, 70.0, 20.0, 80.0))}


def test_merging_never_joins_two_classes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 9.0, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.tensor([1, 2, 1])
    for merge in ("nms", "greedy"):
        out = merge_detections(boxes, scores, labels, merge=merge, threshold=0.5)
        assert out["labels"].tolist() == [1, 2] and out["scores"].tolist() == pytest.approx([0.9, 0.8])
        assert out["boxes"][0].tolist() == [0.0, 0.0, 10.0, 10.0]


def test_greedy_iou_metric_is_stricter_than_ios():
    # a small box inside a large one: IoS 1, IoU 0.25
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 10.0, 10.0]])
    scores, labels = torch.tensor([0.9, 0.5]), torch.tensor([1, 1])
    assert len(merge_detections(boxes, scores, labels, "greedy", "ios", 0.5)["boxes"]) == 1
    assert len(merge_detections(boxes, scores, labels, "greedy", "iou", 0.5)["boxes"]) == 2


def test_drop_cut_removes_views_cut_by_an_inner_border():
    # tile [0, 120) sees x 60..100 whole; tile [80, 200) sees only 80..100, cut at its left border
    image = paint(100, 200, [(1, (60, 30, 100, 50))])
    kept = sliced_detect(PixelDetector(), image, SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3))
    assert len(kept["boxes"]) == 2
    dropped = sliced_detect(PixelDetector(), image, SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3, drop_cut=True))
    assert as_set(dropped) == {(1, (60.0, 30.0, 100.0, 50.0))}


def test_full_pass_adds_a_large_box():
    height, width = 200, 300
    large = [20.0, 10.0, 280.0, 190.0]

    def detector(images):  # finds the large object only when it sees the whole image
        outputs = []
        for image in images:
            whole = tuple(image.shape[-2:]) == (height, width)
            outputs.append({
                "boxes": torch.tensor([large] if whole else []).reshape(-1, 4),
                "scores": torch.tensor([0.8] if whole else []),
                "labels": torch.tensor([3] if whole else [], dtype=torch.int64),
            })
        return outputs

    image = torch.zeros(3, height, width)
    without = sliced_detect(detector, image, SliceOptions(tile_h=100, tile_w=100))
    assert len(without["boxes"]) == 0
    output = sliced_detect(detector, image, SliceOptions(tile_h=100, tile_w=100, full_pass=True))
    assert as_set(output) == {(3, tuple(large))}


class TwoStageCapped(PixelDetector):
    class roi_heads:  # noqa: N801 (stands in for Faster R-CNN's attribute)
        detections_per_img = 2


class OneStageCapped(PixelDetector):
    detections_per_img = 2  # RetinaNet's and FCOS's own attribute


@pytest.mark.parametrize("Capped", [TwoStageCapped, OneStageCapped])
def test_capped_at_the_models_detections_per_image_best_first(Capped):  # noqa: N803

    objects = [(k, (20 * k, 10, 20 * k + 2 * k + 4, 30)) for k in range(1, 6)]  # all in the first tile only
    image = paint(100, 300, objects)
    output = sliced_detect(Capped(), image, SliceOptions(tile_h=100, tile_w=160))
    assert output["labels"].tolist() == [5, 4]  # the two largest objects score best
    assert output["scores"].tolist() == sorted(output["scores"].tolist(), reverse=True)
    assert len(sliced_detect(Capped(), image, SliceOptions(tile_h=100, tile_w=160), max_detections=10)["boxes"]) == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"overlap": 1.0}, {"overlap": -0.2}, {"merge": "soft"}, {"match_metric": "dice"},
     {"match_threshold": 1.5}, {"batch_size": 0}, {"tile_h": 0}],
)
def test_bad_options_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        SliceOptions(**{"tile_h": 10, "tile_w": 10, **kwargs})


# ----------------------------------------------------------------------------- the command line


def _checkpoint(path):
    """A random tiny detector saved as `mrae train` does (two classes)."""
    import json

    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.config import load_config, to_dict
    from mrae.modeling.detector import build_detector

    config = path.with_suffix(".yaml")
    model = {"extractor": "single", "level": 2, "backbone": "resnet18", "out_channels": 16,
             "num_classes": 3, "min_size": 64, "max_size": 96}
    config.write_text("model: " + json.dumps(model) + "\ntrain: {device: cpu}\n")
    cfg = load_config(config)
    torch.manual_seed(0)
    save_checkpoint(path, {"model": build_detector(**to_dict(cfg.model)).state_dict(), "config": to_dict(cfg),
                           "class_names": ["dot", "bar"], "label_to_cat": {1: 1, 2: 2}, "step": 0,
                           "best_metric": None})
    return path


BAD_FLAGS = [
    (["--slice", "0x512"], "--slice"),
    (["--slice", "300"], "--slice"),
    (["--slice=-3x4"], "--slice"),
    (["--slice", "axb"], "--slice"),
    (["--slice", "64x64", "--overlap", "1"], "--overlap"),
    (["--slice", "64x64", "--overlap", "-0.1"], "--overlap"),
    (["--slice", "64x64", "--overlap", "lots"], "--overlap"),
    (["--slice", "64x64", "--overlap", "nan"], "--overlap"),
    (["--slice", "64x64", "--merge", "soft"], "--merge"),
    (["--slice", "64x64", "--merge", "greedy", "--match-metric", "dice"], "--match-metric"),
    (["--slice", "64x64", "--match-threshold", "2"], "--match-threshold"),
    (["--slice", "64x64", "--slice-batch", "0"], "--slice-batch"),
    (["--overlap", "0.2"], "--overlap needs --slice"),
    (["--full-pass"], "--full-pass needs --slice"),
]


@pytest.mark.parametrize("command", ["predict", "eval"])
@pytest.mark.parametrize(("flags", "named"), BAD_FLAGS)
def test_bad_slice_flags_are_one_line_errors_before_anything_is_loaded(command, flags, named, tmp_path, capsys):
    from mrae.cli import main

    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"not read: the flags are checked first")
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [command, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), *flags]
    if command == "predict":
        args.insert(3, str(image))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and err[0].startswith(f"mrae {command}: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_predict_with_slices_writes_detections_in_original_pixels(tmp_path):
    import json

    from PIL import Image

    from mrae.cli import main

    checkpoint = _checkpoint(tmp_path / "model.pth")
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 255, (70, 150, 3), dtype=np.uint8)).save(folder / "big.png")
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(checkpoint), str(folder), "--out", str(out), "--device", "cpu",
            "--no-progress", "--score-thresh", "0", "--slice", "64x96", "--overlap", "0.25",
            "--merge", "greedy", "--full-pass"]
    assert main(args) == 0
    detections = json.loads((out / "detections.json").read_text())
    assert detections, "a random box head scores every class above 0"
    for d in detections:
        x, y, w, h = d["bbox"]
        assert -1e-3 <= x and -1e-3 <= y and x + w <= 150 + 1e-3 and y + h <= 70 + 1e-3
    assert len(detections) <= 300  # the model's detections per image
    record = json.loads((out / "predict.json").read_text())
    assert record["slicing"]["tile"] == [64, 96] and record["slicing"]["merge"] == "greedy"
    assert record["slicing"]["full_pass"] is True


def test_evaluate_model_with_slices_scores_an_object_no_tile_sees_whole(tmp_path):
    import json

    from PIL import Image

    from mrae.data.coco import CocoDetection
    from mrae.evaluation.evaluator import evaluate_model

    # one 100x200 image, one object (x 60..140) wider than the strip two tiles share (80..120)
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[30:50, 60:140, 0] = 26  # read back as ~0.1: label 1 for the PixelDetector
    (tmp_path / "images").mkdir()
    Image.fromarray(pixels).save(tmp_path / "images" / "a.png")
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 30, 80, 20],
                         "area": 1600.0, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "bar"}],
    }))
    dataset = CocoDetection(tmp_path / "images", ann, train=False)

    class Model(torch.nn.Module):
        def forward(self, images):
            return PixelDetector()(images)

    options = SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3, merge="greedy")
    metrics, detections = evaluate_model(Model(), dataset, progress=False, slicing=options)
    assert [d["bbox"] for d in detections] == [[60.0, 30.0, 80.0, 20.0]]
    assert metrics["AP"] == pytest.approx(1.0) and np.isnan(metrics["recall@100"])
    nms = SliceOptions(tile_h=100, tile_w=120, overlap=1 / 3)
    halves, detections = evaluate_model(Model(), dataset, progress=False, slicing=nms)
    assert len(detections) == 2 and halves["AP"] < 0.9  # two cut halves, each at IoU 0.75 only
