"""`mrae train` checks before it trains: missing image files, a resize that makes boxes tiny, a
schedule whose milestones lie past its last step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrae import cli
from mrae.data.synth import generate
from mrae.engine.trainer import Trainer

TRAIN = "train: {steps: 1, batch_size: 1, device: cpu}\n"


@pytest.fixture()
def data(tmp_path) -> dict[str, str]:
    return generate(tmp_path / "data", train_images=3, val_images=2, width=128, height=96,
                    workers=0, progress=False)


def write_config(path: Path, tiny_sections, data: dict[str, str]) -> Path:
    path.write_text(tiny_sections("mrae", data) + TRAIN)
    return path


def test_missing_image_files_are_named_before_the_run_folder_exists(tmp_path, data, tiny_sections, capsys):
    images = sorted(Path(data["val_images"]).iterdir())
    for image in images:
        image.unlink()
    config = write_config(tmp_path / "tiny.yaml", tiny_sections, data)
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(config), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mrae train: error:")
    assert "2 of its 2 image files are missing" in err
    assert all(image.name in err for image in images) and data["val_annotations"] in err
    assert not run.exists()


def test_a_resize_that_shrinks_the_median_box_below_8_px_warns_once(tmp_path, data, tiny_sections, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "train", lambda self: {})  # the checks, not the training
    config = write_config(tmp_path / "tiny.yaml", tiny_sections, data)
    overrides = ["model.min_size=16", "model.max_size=24"]  # 128 x 96 -> 21 x 16: boxes / 6
    assert cli.main(["train", "--config", str(config), *overrides, "--out", str(tmp_path / "a")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "median training box" in line]
    assert len(warnings) == 1
    assert "model.min_size 16, model.max_size 24" in warnings[0] and "slicing" in warnings[0]

    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "b")]) == 0
    assert "median training box" not in capsys.readouterr().err  # 128 x 96 is kept as it is


def test_the_shrink_warning_follows_tile_training(tmp_path, data, tiny_sections, monkeypatch, capsys):
    """With data.crop_scale: tile the model resizes 32 x 48 px tiles of the original image to
    min_size 32 / max_size 48, i.e. not at all: the boxes keep their size, no warning (whole
    128 x 96 images would be shrunk 3x)."""
    monkeypatch.setattr(Trainer, "train", lambda self: {})
    config = write_config(tmp_path / "tiny.yaml", tiny_sections, data)
    small = ["model.min_size=32", "model.max_size=48"]
    tiles = ["data.train_crop=[32,48]", "data.crop_scale=tile"]
    assert cli.main(["train", "--config", str(config), *small, *tiles, "--out",
                     str(tmp_path / "tile")]) == 0
    assert "median training box" not in capsys.readouterr().err
    # the same tiles cut at the whole image's scale (crop_scale: image) shrink as whole images do
    assert cli.main(["train", "--config", str(config), *small, "data.train_crop=[32,48]",
                     "--out", str(tmp_path / "image")]) == 0
    assert "median training box" in capsys.readouterr().err


def test_milestones_past_the_last_step_are_warned_of_before_training(tmp_path, data, tiny_sections, monkeypatch, capsys):
    """The classic slip: train.steps shortened on the command line, the milestones left."""
    monkeypatch.setattr(Trainer, "train", lambda self: {})
    config = write_config(tmp_path / "tiny.yaml", tiny_sections, data)
    assert cli.main(["train", "--config", str(config), "train.steps=4", "train.milestones=[3,8]",
                     "--out", str(tmp_path / "late")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "train.milestones" in line]
    assert len(warnings) == 1 and "train.milestones 8 lies at or after the last step (train.steps=4)" in warnings[0]
    assert cli.main(["train", "--config", str(config), "train.steps=4", "train.milestones=[3]",
                     "--out", str(tmp_path / "sound")]) == 0
    assert "train.milestones" not in capsys.readouterr().err


def test_a_group_by_matching_no_val_image_fails_before_the_first_step():
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from mrae.engine.trainer import _val_groups
    from mrae.errors import DataError

    cfg = OmegaConf.create({"eval": {"group_by": "^(?P<x>night)", "max_images": None}})
    val = SimpleNamespace(ids=[1, 2], ann_file="val.json",
                          coco=SimpleNamespace(imgs={1: {"id": 1, "file_name": "0_60_30_0_1.jpg"},
                                                     2: {"id": 2, "file_name": "1_60_30_0_2.jpg"}}))
    with pytest.raises(DataError, match="matches none of the 2 images of val.json"):
        _val_groups(cfg, val)
    cfg.eval.group_by = "^(?P<light>[01])_"
    assert _val_groups(cfg, val).names == ("light",)
    cfg.eval.group_by = None
    assert _val_groups(cfg, val) is None
