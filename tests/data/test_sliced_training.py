"""Sliced training end to end: `mrae train` on tiles (data.crop_scale=tile) with the cut boxes
under data.crop_min_visible ignored rather than dropped."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mrae import cli
from mrae.data import augment
from mrae.data.synth import generate
from mrae.engine.config import load_config
from mrae.engine.metrics_log import read_metrics
from mrae.errors import ConfigError

TRAIN = """
train:
  steps: 2
  batch_size: 2
  lr: 0.01
  log_every: 1
  checkpoint_every: 0
  device: cpu
"""
SLICED = ["data.train_crop=[64,64]", "data.crop_scale=tile", "data.crop_min_visible=0.5",
          "data.val_images=null", "data.val_annotations=null"]


class _Options:
    """What the training run's crops saw: the options `mrae train` gave AugmentByKey, and per
    crop (min_visible, boxes ignored because cut) from crop_target."""

    def __init__(self) -> None:
        self.given: list[dict] = []
        self.crops: list[tuple[float | None, int]] = []


@pytest.fixture(scope="module")
def sliced_run(tmp_path_factory, tiny_sections) -> tuple[Path, _Options]:
    """2 steps of `mrae train` on 64 x 64 tiles of 4 images of 128 x 96 px, recording what the
    training view (AugmentByKey) and each crop are given."""
    root = tmp_path_factory.mktemp("sliced")
    paths = generate(root / "data", train_images=4, val_images=1, width=128, height=96,
                     workers=0, progress=False)
    config = root / "tiny.yaml"
    config.write_text(tiny_sections("mrae", paths) + TRAIN)
    seen = _Options()
    crop_target = augment.crop_target

    def spy(target, *args, **kwargs):
        out = crop_target(target, *args, **kwargs)
        before = len(target.get("ignore_boxes", ()))
        seen.crops.append((kwargs.get("min_visible"), len(out.get("ignore_boxes", ())) - before))
        return out

    class Augment(augment.AugmentByKey):
        def __init__(self, dataset, *args, **kwargs):
            seen.given.append(dict(kwargs))
            super().__init__(dataset, *args, **kwargs)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as tests/conftest.py's one_thread, for this module-wide run
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(augment, "crop_target", spy)
            patch.setattr(augment, "AugmentByKey", Augment)
            run = root / "run"
            assert cli.main(["train", "--config", str(config), "--out", str(run), *SLICED]) == 0
    finally:
        torch.set_num_threads(threads)
    return run, seen


def test_training_on_tiles_with_ignored_cut_boxes_runs(sliced_run):
    run, seen = sliced_run
    losses = [r["loss"] for r in read_metrics(run) if "loss" in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert [v for v, _ in seen.crops] == [0.5] * 4  # every training image was cropped (2 x 2)
    assert sum(n for _, n in seen.crops) > 0  # some cut boxes were trained as ignore regions
    assert (run / "checkpoints" / "last.pth").is_file()


def test_train_passes_the_options_to_the_crops(sliced_run):
    _, seen = sliced_run
    given = seen.given[0]
    assert given["min_visible"] == 0.5 and given["crop_scale"] == "tile"


@pytest.mark.parametrize(("overrides", "says"), [
    (["data.crop_min_visible=0"], "data.crop_min_visible=0.0 must be a share of a box's area in (0, 1]"),
    (["data.crop_min_visible=1.5"], "data.crop_min_visible=1.5 must be a share"),
    (["data.crop_min_visible=nan"], "data.crop_min_visible=nan must be a share"),
    (["data.crop_scale=native"], "data.crop_scale='native' is not valid; choose one of image, tile"),
    (["data.train_crop=null"], "data.crop_min_visible=0.5 needs data.train_crop"),
    (["model.ignore_iof_thr=null"], "data.crop_min_visible=0.5 needs model.ignore_iof_thr"),
    (["data.train_crop=null", "data.crop_min_visible=null"], "data.crop_scale='tile' needs data.train_crop"),
])
def test_config_refuses_bad_sliced_training_options_in_one_line(overrides, says):
    base = ["data.train_crop=[300,300]", "data.crop_min_visible=0.5", "data.crop_scale=tile"]
    with pytest.raises(ConfigError) as error:
        load_config("configs/synth/demo.yaml", [*base, *overrides])
    assert says in str(error.value) and "\n" not in str(error.value)


def test_config_defaults_leave_the_crops_as_they_were():
    cfg = load_config("configs/synth/demo.yaml")
    assert cfg.data.crop_min_visible is None and cfg.data.crop_scale == "image"
    assert load_config("configs/synth/demo.yaml", ["data.train_crop=[300,300]",
                                                   "data.crop_min_visible=1"]).data.crop_min_visible == 1.0
