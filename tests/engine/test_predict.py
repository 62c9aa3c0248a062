"""mrae predict: detections JSON, drawn pictures, attention files, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrae.cli import main
from mrae.engine.draw import draw_detections

CLASS_NAMES = ["dot", "bar"]
LABEL_TO_CAT = {1: 3, 2: 7}


def make_checkpoint(path: Path, **model) -> Path:
    """A checkpoint of a random tiny detector, with the keys `mrae train` writes."""
    from mrae.detector import build_detector
    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.config import load_config, to_dict

    config = path.with_suffix(".yaml")
    options = {"backbone": "resnet18", "out_channels": 16, "num_classes": 3, "min_size": 64, "max_size": 96}
    config.write_text("model: " + json.dumps({**options, **model}) + "\ntrain: {device: cpu}\n")
    cfg = load_config(config)
    torch.manual_seed(0)
    detector = build_detector(**to_dict(cfg.model))
    save_checkpoint(
        path,
        {
            "model": detector.state_dict(),
            "config": to_dict(cfg),
            "class_names": CLASS_NAMES,
            "label_to_cat": LABEL_TO_CAT,
            "step": 0,
            "best_metric": None,
        },
    )
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "spatial": make_checkpoint(root / "spatial.pth", extractor="mrae", mode="spatial"),
        "global": make_checkpoint(root / "global.pth", extractor="mrae", mode="global"),
        "single": make_checkpoint(root / "single.pth", extractor="single", level=2),
    }


@pytest.fixture()
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (width, height) in {"b.png": (80, 60), "a.jpg": (70, 50)}.items():
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def predict(checkpoint: Path, *inputs, out: Path, extra=()) -> int:
    args = ["predict", "--checkpoint", str(checkpoint), *map(str, inputs), "--out", str(out)]
    return main([*args, "--device", "cpu", "--no-progress", *extra])


def test_spatial_mrae_writes_detections_pictures_and_attention_maps(checkpoints, images, tmp_path):
    out = tmp_path / "out"
    assert predict(checkpoints["spatial"], images, out=out, extra=["--score-thresh", "0", "--attention"]) == 0

    detections = json.loads((out / "detections.json").read_text())
    assert detections, "a random model scores every class above 0"
    files = {0: str(images / "a.jpg"), 1: str(images / "b.png")}  # the folder is read sorted
    for d in detections:
        assert d["file_name"] == files[d["image_id"]]
        assert d["category_id"] in (3, 7)
        assert d["category_name"] == {3: "dot", 7: "bar"}[d["category_id"]]
        x, y, w, h = d["bbox"]
        assert w >= 0 and h >= 0 and 0 <= d["score"] <= 1

    with Image.open(out / "a.jpg") as a, Image.open(out / "b.jpg") as b:
        assert a.size == (140, 100) and b.size == (160, 120)  # small images are drawn at 2x

    weights = json.loads((out / "attention.json").read_text())
    assert [w["file_name"] for w in weights] == [files[0], files[1]]
    for record in weights:
        assert record["mode"] == "spatial" and len(record["weights"]) == 3
        assert sum(record["weights"]) == pytest.approx(1.0, abs=1e-5)  # a softmax over levels
        assert (out / f"{Path(record['file_name']).stem}_attention.png").is_file()


def test_global_mrae_saves_level_weights_and_threshold_applies(checkpoints, images, tmp_path):
    out = tmp_path / "out"
    image = images / "b.png"
    assert predict(checkpoints["global"], image, out=out, extra=["--score-thresh", "0.4", "--attention"]) == 0
    detections = json.loads((out / "detections.json").read_text())
    assert all(d["score"] >= 0.4 for d in detections)
    (record,) = json.loads((out / "attention.json").read_text())
    assert record["mode"] == "global" and sum(record["weights"]) == pytest.approx(1.0, abs=1e-5)
    assert not list(out.glob("*_attention.png"))


def test_attention_of_an_extractor_without_it_says_so_and_continues(checkpoints, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(checkpoints["single"], images, out=out, extra=["--attention"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "attention weights" in line]
    assert lines == ["--attention: the single extractor has no attention weights; drawing detections only"]
    assert (out / "a.jpg").is_file() and (out / "detections.json").is_file()
    assert not (out / "attention.json").exists()


@pytest.mark.parametrize("case", ["missing", "empty folder", "unreadable"])
def test_bad_inputs_are_one_line_errors_naming_the_path(checkpoints, tmp_path, capsys, case):
    if case == "missing":
        bad = tmp_path / "nope.png"
    elif case == "empty folder":
        bad = tmp_path / "empty"
        bad.mkdir()
    else:
        bad = tmp_path / "broken.png"
        bad.write_bytes(b"not a png")
    assert predict(checkpoints["single"], bad, out=tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and err.startswith("mrae predict: error:")


def test_draw_keeps_large_images_at_their_size_and_colours_by_class():
    image = torch.zeros(3, 700, 800)
    boxes = torch.tensor([[10.0, 10, 30, 30], [100, 100, 140, 120]])
    drawn = draw_detections(image, boxes, [1, 2], [0.9, 0.6], CLASS_NAMES)
    assert drawn.shape == (3, 700, 800) and drawn.dtype == torch.uint8
    assert not torch.equal(drawn[:, 10, 12], drawn[:, 100, 102])  # two classes, two colours
