"""evaluate_model against pycocotools run directly, the tiny buckets, proposal recall, the table."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from mrae.data.coco import CocoDetection
from mrae.errors import ConfigError
from mrae.evaluation.coco_metrics import TABLE_HEADER, markdown_row, tiny_bucket_ap
from mrae.evaluation.evaluator import evaluate_model, proposals_covering

WIDTH, HEIGHT = 64, 48
CATEGORIES = [{"id": 3, "name": "dot"}, {"id": 7, "name": "bar"}]  # labels 1, 2
# image id -> [(x, y, w, h), category id, iscrowd, area]; area differs from w*h on purpose once.
ANNOTATIONS = {
    1: [
        ((2, 2, 5, 5), 3, 0, 25.0),
        ((10, 10, 12, 12), 7, 0, 144.0),
        ((30, 5, 20, 20), 3, 0, 400.0),
        ((40, 30, 10, 10), 7, 1, 100.0),
    ],
    2: [((5, 5, 40, 40), 7, 0, 1600.0), ((50, 30, 6, 6), 3, 0, 36.0)],
    3: [],
    4: [((1, 1, 10, 10), 7, 0, 50.0), ((20, 20, 16, 16), 3, 0, 256.0)],
}

# What the test reads from COCOeval's stats, written out independently of the module's table.
STATS = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "AR1": 6, "AR10": 7, "AR100": 8, "ARs": 9, "ARm": 10}


def write_dataset(root: Path, annotations: dict = ANNOTATIONS) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    images, anns = [], []
    for image_id, objects in annotations.items():
        name = f"{image_id:04d}.png"
        pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_dir / name)
        images.append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for bbox, cat, crowd, area in objects:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": list(bbox),
                    "iscrowd": crowd,
                    "area": area,
                }
            )
    ann_file = root / "instances.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return images_dir, ann_file


class FakeDetector(nn.Module):
    """Returns the given outputs in order, one per image, like a detector in eval mode."""

    def __init__(self, outputs: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.outputs = outputs
        self.calls = 0

    def forward(self, images):
        assert len(images) == 1 and images[0].shape == (3, HEIGHT, WIDTH)
        output = self.outputs[self.calls]
        self.calls += 1
        return [output]


def gt_outputs(dataset: CocoDetection, jitter: float = 0.0, false_positives: int = 0, seed: int = 0):
    """Per image: the GT boxes (jittered by up to ``jitter`` px) plus random false positives."""
    generator = torch.Generator().manual_seed(seed)
    outputs = []
    for index in range(len(dataset)):
        target = dataset.load_target(dataset.ids[index])
        boxes = target["boxes"] + jitter * (2 * torch.rand(target["boxes"].shape, generator=generator) - 1)
        labels = target["labels"]
        xy = torch.rand(false_positives, 2, generator=generator) * torch.tensor([WIDTH - 12, HEIGHT - 12])
        wh = 2 + 10 * torch.rand(false_positives, 2, generator=generator)
        boxes = torch.cat([boxes, torch.cat([xy, xy + wh], 1)])
        labels = torch.cat([labels, torch.randint(1, 3, (false_positives,), generator=generator)])
        scores = torch.rand(len(boxes), generator=generator) if jitter or false_positives else torch.ones(len(boxes))
        outputs.append({"boxes": boxes, "labels": labels, "scores": scores})
    return outputs


def direct_cocoeval(ann_file: Path, results_file: Path, image_ids: list[int]) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        evaluator = COCOeval(gt, gt.loadRes(str(results_file)), "bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def assert_same(value: float, expected: float) -> None:
    if expected < 0:
        assert math.isnan(value)
    else:
        assert value == expected


@pytest.fixture()
def dataset(tmp_path):
    images_dir, ann_file = write_dataset(tmp_path)
    return CocoDetection(images_dir, ann_file, train=False)


@pytest.mark.parametrize("max_images", [None, 2])
def test_metrics_equal_cocoeval_on_the_written_results_file(dataset, tmp_path, max_images):
    model = FakeDetector(gt_outputs(dataset, jitter=2.5, false_positives=6))
    metrics, detections = evaluate_model(model, dataset, max_images=max_images, progress=False)
    evaluated = dataset.ids[:max_images] if max_images else dataset.ids
    assert model.calls == len(evaluated)
    assert {d["image_id"] for d in detections} <= set(evaluated)
    assert {d["category_id"] for d in detections} == {3, 7}

    results_file = tmp_path / "detections.json"
    results_file.write_text(json.dumps(detections))
    direct = direct_cocoeval(dataset.ann_file, results_file, list(evaluated))
    for name, index in STATS.items():
        assert_same(metrics[name], direct.stats[index])
    assert 0.05 < metrics["AP"] < 0.95  # jitter and false positives: a non-trivial number
    assert metrics["ms_per_image"] > 0
    assert all(math.isnan(metrics[f"recall@{k}"]) for k in (100, 300, 1000))  # no RPN to read


def test_tiny_buckets_equal_cocoeval_summarize_with_those_ranges(dataset):
    model = FakeDetector(gt_outputs(dataset, jitter=1.5, false_positives=4, seed=1))
    metrics, detections = evaluate_model(model, dataset, progress=False)
    # COCOeval's own summarize reads ranges by the labels small/medium/large: give it ours.
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(dataset.coco, dataset.coco.loadRes(detections), "bbox")
        evaluator.params.areaRng = [[0, 1e10], [0, 64], [64, 256], [256, 1024]]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    for name, index in (("AP_verytiny", 3), ("AP_tiny", 4), ("AP_small", 5)):
        assert metrics[name] == pytest.approx(evaluator.stats[index], abs=1e-12)
        assert 0.0 < metrics[name] < 1.0


def test_perfect_detections_score_one_in_every_bucket_with_ground_truth(dataset):
    model = FakeDetector(gt_outputs(dataset))
    metrics, detections = evaluate_model(model, dataset, progress=False)
    for name in ("AP", "AP50", "AP75", "APs", "APm", "AR100", "AP_verytiny", "AP_tiny", "AP_small"):
        assert metrics[name] == pytest.approx(1.0), name
    # The annotation's `area` field decides the bucket, not the box: 10x10 box with area 50.
    only_that = [d for d in detections if d["image_id"] == 4 and d["category_id"] == 7]
    buckets = tiny_bucket_ap(dataset.coco, only_that, [4], {"by_area": (0, 64), "by_box": (65, 200)})
    assert buckets["AP_by_area"] == pytest.approx(1.0)
    assert math.isnan(buckets["AP_by_box"])  # no GT there: NaN, not -1


def test_empty_predictions_give_zero_not_a_crash(dataset):
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
    metrics, detections = evaluate_model(FakeDetector([empty] * len(dataset)), dataset, progress=False)
    assert detections == []
    for name in ("AP", "AP50", "APs", "AR100", "AP_verytiny", "AP_tiny", "AP_small"):
        assert metrics[name] == 0.0, name


def test_images_without_ground_truth_give_nan_not_minus_one(tmp_path):
    images_dir, ann_file = write_dataset(tmp_path, {1: [], 2: []})
    dataset = CocoDetection(images_dir, ann_file, train=False)
    model = FakeDetector(gt_outputs(dataset, false_positives=3))
    metrics, detections = evaluate_model(model, dataset, progress=False)
    assert len(detections) == 6
    for name in (*STATS, "AP_verytiny", "AP_tiny", "AP_small"):
        assert math.isnan(metrics[name]), name


def test_refuses_a_dataset_with_augmentation_and_bad_max_images(dataset, tmp_path):
    augmented = CocoDetection(dataset.images_dir, dataset.ann_file, transforms=lambda i, t: (i, t))
    with pytest.raises(ConfigError, match="without transforms"):
        evaluate_model(FakeDetector([]), augmented, progress=False)
    with pytest.raises(ConfigError, match="max_images"):
        evaluate_model(FakeDetector([]), dataset, max_images=0, progress=False)


def test_model_mode_is_restored(dataset):
    model = FakeDetector(gt_outputs(dataset)).train()
    evaluate_model(model, dataset, progress=False)
    assert model.training


def test_proposals_covering_counts_the_first_k():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 44, 44]])
    junk = torch.tensor([[100.0, 100, 110, 110]])
    proposals = torch.cat(
        [
            torch.tensor([[0.0, 0, 10, 11]]),  # covers gt 0 (IoU 0.91) at rank 0
            junk.repeat(4, 1),
            torch.tensor([[22.0, 22, 30, 30]]),  # covers gt 1 (IoU 0.64) at rank 5
            torch.tensor([[40.0, 40, 50, 50]]),  # IoU 0.16 with gt 2: not covered
        ]
    )
    assert proposals_covering(proposals, gt, [1, 5, 6, 10]) == {1: 1, 5: 1, 6: 2, 10: 2}
    assert proposals_covering(proposals, gt[:0], [1]) == {1: 0}
    assert proposals_covering(proposals[:0], gt, [1]) == {1: 0}


def test_markdown_row_prints_percent_with_one_decimal_and_dashes():
    metrics = {"AP": 0.0512, "AP50": 0.0951, "APm": math.nan, "ms_per_image": 16.04, "ARs": None}
    header = TABLE_HEADER.splitlines()
    row = markdown_row("MRAE template2", metrics)
    assert header[0].startswith("| model | AP | AP50 | AP75 | APs | APm | AR1 |")
    assert header[0].endswith("| ms |")
    assert row.count("|") == header[0].count("|") == header[1].count("|")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:6] == ["MRAE template2", "5.1", "9.5", "-", "-", "-"]
    assert cells[-1] == "16.0"


# ---- with a real (tiny, randomly initialised) detector ------------------------------------------


def tiny_detector(**kwargs):
    from mrae.modeling.detector import build_detector

    torch.manual_seed(0)
    options = dict(
        extractor="single", level=1, backbone="resnet18", pretrained=None, out_channels=16,
        num_classes=3, min_size=96, max_size=160, rpn_post_nms_top_n_test=50,
    )
    return build_detector(**{**options, **kwargs}).eval()


def test_step_by_step_forward_is_the_models_forward(dataset):
    from mrae.evaluation.evaluator import detect_with_proposals

    model = tiny_detector()
    image, _ = dataset[0]
    with torch.inference_mode():
        expected = model([image])[0]
        detections, proposals = detect_with_proposals(model, [image])
    for key in ("boxes", "labels", "scores"):
        torch.testing.assert_close(detections[0][key], expected[key])
    assert proposals[0].shape == (50, 4)
    # proposals are in the input image's pixels (the model saw it at 2x)
    assert proposals[0][:, 2].max() <= WIDTH and proposals[0][:, 3].max() <= HEIGHT


class ChosenProposals(nn.Module):
    """An RPN stand-in: per image, GT boxes (at the model's input scale) at chosen ranks; another
    test-time count is another stand-in (``with_post_nms_top_n``, as mrae's RPN has it) sharing
    the boxes and the record of what was asked."""

    def __init__(self, per_image: list[torch.Tensor], count: int = 10, counts_seen: list[int] | None = None,
                 calls: list[int] | None = None) -> None:
        super().__init__()
        self.per_image = per_image
        self.settings = SimpleNamespace(post_nms_top_n_test=count)
        self.counts_seen = [] if counts_seen is None else counts_seen
        self.calls = [0] if calls is None else calls

    def with_post_nms_top_n(self, *, testing: int) -> ChosenProposals:
        return ChosenProposals(self.per_image, testing, self.counts_seen, self.calls)

    def forward(self, images, features, targets=None):
        (height, width), = images.image_sizes
        scale = torch.tensor([width / WIDTH, height / HEIGHT] * 2)
        proposals = self.per_image[self.calls[0]] * scale
        self.calls[0] += 1
        count = self.settings.post_nms_top_n_test
        self.counts_seen.append(count)
        return [proposals[:count]], {}


def test_proposal_recall_of_small_objects_at_100_300_1000(dataset):
    model = tiny_detector()
    junk = torch.tensor([[0.0, 0.0, 1.0, 1.0]])  # IoU 0 with every GT box

    def ranked(boxes_at: dict[int, list[float]]) -> torch.Tensor:
        rows = junk.repeat(2100, 1)
        for rank, (x, y, w, h) in boxes_at.items():
            rows[rank] = torch.tensor([x, y, x + w, y + h])
        return rows

    # small GT: image 1: three (the crowd box does not count), image 2: one (40x40 is medium),
    # image 3: none, image 4: two (area 50 and 256).
    model.rpn = ChosenProposals(
        [
            ranked({0: [2, 2, 5, 5], 150: [10, 10, 12, 12], 500: [30, 5, 20, 20]}),
            ranked({50: [50, 30, 6, 6], 60: [5, 5, 40, 40]}),
            ranked({}),
            ranked({250: [1, 1, 10, 10], 2000: [20, 20, 16, 16]}),
        ]
    )
    metrics, _ = evaluate_model(model, dataset, progress=False)
    assert metrics["recall@100"] == pytest.approx(2 / 6)
    assert metrics["recall@300"] == pytest.approx(4 / 6)
    assert metrics["recall@1000"] == pytest.approx(5 / 6)
    assert model.rpn.counts_seen == [1000] * 4  # an RPN keeping 1000 while evaluating,
    assert model.rpn.settings.post_nms_top_n_test == 10  # the model's own unchanged


def test_real_detector_rpn_setting_restored_and_metrics_complete(dataset):
    model = tiny_detector()
    metrics, detections = evaluate_model(model, dataset, progress=False, proposal_counts=(10, 100))
    assert model.rpn.settings.post_nms_top_n_test == 50
    assert set(metrics) >= {*STATS, "AP_verytiny", "AP_tiny", "AP_small", "recall@10", "recall@100"}
    assert 0.0 <= metrics["recall@10"] <= metrics["recall@100"] <= 1.0
    assert all(d["category_id"] in (3, 7) for d in detections)


# ---- mrae eval ----------------------------------------------------------------------------------


def make_run(tmp_path: Path, images_dir: Path, ann_file: Path) -> Path:
    """A run folder with config.yaml and checkpoints/last.pth of a random tiny detector."""
    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.config import load_config, to_dict, to_yaml
    from mrae.modeling.detector import build_detector

    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: {extractor: single, level: 1, backbone: resnet18, out_channels: 16, num_classes: 3,"
        " min_size: 96, max_size: 160, rpn_post_nms_top_n_test: 50}\n"
        f"data: {{train_images: {images_dir}, train_annotations: {ann_file},"
        f" val_images: {images_dir}, val_annotations: {ann_file}, workers: 0}}\n"
        "train: {device: cpu}\n"
    )
    cfg = load_config(config)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    torch.manual_seed(0)
    model = build_detector(**to_dict(cfg.model))
    save_checkpoint(
        run_dir / "checkpoints" / "last.pth",
        {
            "model": model.state_dict(),
            "config": to_dict(cfg),
            "class_names": ["dot", "bar"],
            "label_to_cat": {1: 3, 2: 7},
            "step": 0,
            "best_metric": None,
        },
    )
    return run_dir


def test_eval_cli_prints_the_row_and_writes_files_cocoeval_agrees_with(dataset, tmp_path, capsys):
    from mrae.cli import main

    run_dir = make_run(tmp_path, dataset.images_dir, dataset.ann_file)
    checkpoint = run_dir / "checkpoints" / "last.pth"
    assert main(["eval", "--checkpoint", str(checkpoint), "--max-images", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert TABLE_HEADER.splitlines()[0] in printed
    assert "| tiny (last.pth) |" in printed  # the config's name and the checkpoint's file
    assert "Size buckets (APs, APm, ARs, ARm, very tiny, tiny, small, medium) count original-image pixels" in printed

    record = json.loads((run_dir / "eval" / "metrics_val.json").read_text())
    assert record["images"] == 3 and record["size_pixels"] == "original-image pixels"
    results_file = run_dir / "eval" / "detections_val.json"
    detections = json.loads(results_file.read_text())
    assert detections  # random box head: every class scores ~1/3, above box_score_thresh
    direct = direct_cocoeval(dataset.ann_file, results_file, dataset.ids[:3])
    for name, index in STATS.items():
        expected = direct.stats[index]
        assert record["metrics"][name] == (None if expected < 0 else expected), name


def test_eval_cli_errors_are_one_line(dataset, tmp_path, capsys):
    from mrae.cli import main

    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pth")]) == 2
    assert "missing.pth" in capsys.readouterr().err
    run_dir = make_run(tmp_path, dataset.images_dir, dataset.ann_file)
    bad = ["eval", "--checkpoint", str(run_dir / "checkpoints" / "last.pth"), "eval.nope=1"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "eval.nope" in err and len(err.strip().splitlines()) == 1
