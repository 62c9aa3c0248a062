"""mrae predict: detections JSON, drawn pictures, attention files, and one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrae.apps.draw import draw_detections
from mrae.cli import main

CLASS_NAMES = ["dot", "bar"]
LABEL_TO_CAT = {1: 3, 2: 7}


def make_checkpoint(path: Path, **model) -> Path:
    """A checkpoint of a random tiny detector, with the keys `mrae train` writes."""
    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.config import load_config, to_dict
    from mrae.modeling.detector import build_detector

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


@pytest.mark.parametrize("case", ["missing", "empty folder"])
def test_bad_inputs_are_one_line_errors_naming_the_path(checkpoints, tmp_path, capsys, case):
    if case == "missing":
        bad = tmp_path / "nope.png"
    else:
        bad = tmp_path / "empty"
        bad.mkdir()
    assert predict(checkpoints["single"], bad, out=tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and err.startswith("mrae predict: error:")
    assert not (tmp_path / "out").exists()


def test_an_unreadable_image_is_skipped_and_the_others_are_written(checkpoints, images, tmp_path, capsys):
    broken = images / "broken.png"
    broken.write_bytes(b"not a png")
    out = tmp_path / "out"
    code = predict(checkpoints["global"], images, out=out, extra=["--score-thresh", "0", "--attention"])
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if "warning" in line]
    assert len(warnings) == 1 and str(broken) in warnings[0] and warnings[0].endswith("skipped")
    # The folder is read sorted: a.jpg (0), b.png (1), broken.png (2, skipped).
    detections = json.loads((out / "detections.json").read_text())
    assert {d["image_id"] for d in detections} == {0, 1}
    weights = json.loads((out / "attention.json").read_text())
    assert [w["file_name"] for w in weights] == [str(images / "a.jpg"), str(images / "b.png")]
    assert (out / "a.jpg").is_file() and (out / "b.jpg").is_file() and not (out / "broken.jpg").exists()
    record = json.loads((out / "predict.json").read_text())
    assert [f["file_name"] for f in record["failed"]] == [str(broken)]
    assert set(record["files"]) == {"a.jpg", "b.jpg", "detections.json", "attention.json"}


def test_inputs_and_output_folder_are_checked_before_the_model_loads(checkpoints, images, tmp_path, monkeypatch, capsys):
    import mrae.engine.trained

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(mrae.engine.trained, "load_trained", no_loading)
    assert predict(checkpoints["single"], images, tmp_path / "missing.png", out=tmp_path / "out") == 2
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert predict(checkpoints["single"], images, out=taken) == 2
    err = capsys.readouterr().err
    assert "missing.png" in err and "notes.txt" in err and "--overwrite" in err
    assert "loaded" not in err


def test_output_folder_rules(checkpoints, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(checkpoints["single"], images / "b.png", out=out) == 0
    assert predict(checkpoints["single"], images / "a.jpg", out=out) == 0  # its own files: fine
    record = json.loads((out / "predict.json").read_text())
    assert set(record["files"]) == {"a.jpg", "b.jpg", "detections.json"}  # earlier drawings kept

    (out / "notes.txt").write_text("the user's")
    assert predict(checkpoints["single"], images / "b.png", out=out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notes.txt" in err and "--overwrite" in err
    assert predict(checkpoints["single"], images / "b.png", out=out, extra=["--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "the user's"

    before = (images / "a.jpg").read_bytes()
    assert predict(checkpoints["single"], images, out=images, extra=["--overwrite"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert (images / "a.jpg").read_bytes() == before
    (tmp_path / "file").write_text("x")
    assert predict(checkpoints["single"], images, out=tmp_path / "file") == 2
    assert "is a file" in capsys.readouterr().err

    users = tmp_path / "users"  # a predict.json that is not predict's record is the user's file
    users.mkdir()
    (users / "predict.json").write_text("[1, 2]")
    (users / "detections.json").write_text("[]")
    assert predict(checkpoints["single"], images / "b.png", out=users) == 2
    assert "2 file(s)" in capsys.readouterr().err
    assert (users / "predict.json").read_text() == "[1, 2]"


def test_global_attention_draws_the_level_weights_in_a_corner(checkpoints, images, tmp_path):
    image = images / "b.png"  # 80 x 60, drawn at 2x: 160 x 120
    plain, drawn = tmp_path / "plain", tmp_path / "drawn"
    assert predict(checkpoints["global"], image, out=plain, extra=["--score-thresh", "1"]) == 0
    assert predict(checkpoints["global"], image, out=drawn, extra=["--score-thresh", "1", "--attention"]) == 0
    with Image.open(plain / "b.jpg") as a, Image.open(drawn / "b.jpg") as b:
        difference = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    assert difference.shape == (120, 160, 3)
    assert difference[:40, :80].max() <= 2  # far from the chart: the same picture
    assert difference[-60:, -60:].mean() > 20  # the bottom-right corner holds the chart


def test_draw_keeps_large_images_at_their_size_and_colours_by_class():
    image = torch.zeros(3, 700, 800)
    boxes = torch.tensor([[10.0, 10, 30, 30], [100, 100, 140, 120]])
    drawn = draw_detections(image, boxes, [1, 2], [0.9, 0.6], CLASS_NAMES)
    assert drawn.shape == (3, 700, 800) and drawn.dtype == torch.uint8
    assert not torch.equal(drawn[:, 10, 12], drawn[:, 100, 102])  # two classes, two colours


def test_drawings_never_write_through_a_hard_link_or_a_symlink(checkpoints, images, tmp_path):
    out = tmp_path / "p"
    extra = ["--score-thresh", "0", "--attention"]
    assert predict(checkpoints["spatial"], images, out=out, extra=extra) == 0
    album = tmp_path / "album"
    album.mkdir()
    os.link(out / "b.jpg", album / "photo.jpg")  # predict's own, unchanged drawing, linked elsewhere
    os.link(out / "a_attention.png", album / "figure.png")
    kept = {p: p.read_bytes() for p in album.iterdir()}
    assert predict(checkpoints["spatial"], images / "b.png", images / "a.jpg", out=out, extra=extra) == 0
    assert {p: p.read_bytes() for p in album.iterdir()} == kept
    assert (out / "b.jpg").stat().st_ino != (album / "photo.jpg").stat().st_ino

    users = tmp_path / "users"
    users.mkdir()
    photo, dataset_image = tmp_path / "photo.jpg", tmp_path / "dataset_image.jpg"
    photo.write_bytes(b"the user's photo")
    dataset_image.write_bytes(b"a dataset's image")
    (users / "a.jpg").symlink_to(photo)
    os.link(dataset_image, users / "b.jpg")
    (users / "b_attention.png").symlink_to(photo)
    assert predict(checkpoints["spatial"], images, out=users, extra=[*extra, "--overwrite"]) == 0
    assert photo.read_bytes() == b"the user's photo"
    assert dataset_image.read_bytes() == b"a dataset's image"
    for name in ("a.jpg", "b.jpg", "b_attention.png"):
        assert not (users / name).is_symlink() and (users / name).stat().st_nlink == 1
        with Image.open(users / name) as picture:
            picture.verify()
