"""`mrae train ... model.detector=retinanet` and `=fcos` on tiny data through the command line:
train, resume, evaluate (whole and sliced), predict (whole and sliced) with the attention drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrae import cli
from mrae.engine.metrics_log import read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

CONFIG = """
model:
  extractor: mrae
  backbone: resnet18
  trainable_layers: 5
  out_channels: 32
  min_size: 96
  max_size: 128
data:
  train_images: {root}/images/train
  train_annotations: {root}/annotations/instances_train.json
  val_images: {root}/images/val
  val_annotations: {root}/annotations/instances_val.json
  workers: 0
train:
  steps: 4
  batch_size: 2
  lr: 0.01
  warmup_steps: 2
  log_every: 1
  eval_every: 4
  checkpoint_every: 2
  device: cpu
eval:
  max_images: 2
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hosts") / "data"
    assert cli.main(["synth", str(root), "--images", "4", "--val-images", "2", "--seed", "1",
                     "--width", "128", "--height", "96", "--workers", "0"]) == 0
    path = root.parent / "tiny.yaml"
    path.write_text(CONFIG.format(root=root))
    return path


@pytest.mark.parametrize("host", ["retinanet", "fcos"])
def test_train_resume_eval_predict(host, config, tmp_path):
    run = tmp_path / "run"
    train = ["train", "--config", str(config), "--out", str(run), f"model.detector={host}"]
    assert cli.main([*train, "train.steps=2"]) == 0
    assert cli.main([*train, "--resume"]) == 0  # from step 2 to the config's 4
    steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    last = run / "checkpoints" / "last.pth"

    for extra, folder, name in [([], "eval", "metrics_val.json"),
                                (["--slice", "48x64", "--overlap", "0.2"], "eval_sliced",
                                 "metrics_val_slice48x64.json")]:  # a sliced result named by its tiles
        out = tmp_path / folder
        assert cli.main(["eval", "--checkpoint", str(last), "--out", str(out), *extra]) == 0
        metrics = json.loads((out / name).read_text())["metrics"]
        assert 0.0 <= metrics["AP"] <= 1.0 or metrics["AP"] != metrics["AP"]  # a fraction, or NaN

    images = config.parent / "data" / "images" / "val"
    for extra, folder in [([], "pictures"), (["--slice", "48x64"], "pictures_sliced")]:
        out = tmp_path / folder
        assert cli.main(["predict", "--checkpoint", str(last), str(images), "--out", str(out),
                         "--score-thresh", "0.0", "--attention", *extra]) == 0
        assert len(list(out.glob("*.jpg"))) == 2
        assert len(json.loads((out / "attention.json").read_text())) == 2
