"""Training through `mrae train`: logs, checkpoints, exact resume, --init-from, divergence."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from mrae import cli
from mrae.data.synth import CLASSES, generate
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.config import load_config
from mrae.engine.metrics_log import read_metrics
from mrae.engine.train import TrainingDiverged, train
from mrae.errors import ConfigError

TINY_TRAIN = """
train:
  steps: 6
  batch_size: 2
  lr: 0.01
  warmup_steps: 2
  log_every: 1
  eval_every: 3
  checkpoint_every: 3
  keep_last: 1
  device: cpu
eval:
  max_images: 2
"""
NO_VAL = ["data.val_images=null", "data.val_annotations=null"]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory, tiny_sections) -> Path:
    """A config for 4 training and 2 val images of 128 x 96 px and a 6-step schedule."""
    root = tmp_path_factory.mktemp("tiny")
    paths = generate(root / "data", train_images=4, val_images=2, width=128, height=96,
                     workers=0, progress=False)
    config = root / "tiny.yaml"
    config.write_text(tiny_sections("mrae", paths) + TINY_TRAIN)
    return config


@pytest.fixture(scope="module")
def straight_run(tiny_config, tmp_path_factory) -> Path:
    """The 6 steps run without a stop."""
    run = tmp_path_factory.mktemp("runs") / "straight"
    assert cli.main(["train", "--config", str(tiny_config), "--out", str(run)]) == 0
    return run


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run) if "loss" in r]


def test_run_folder_holds_config_logs_and_checkpoints(straight_run):
    assert sorted(p.name for p in (straight_run / "checkpoints").iterdir()) == [
        "best.pth", "last.pth", "step_0000006.pth"
    ]
    assert any((straight_run / "tb").iterdir())
    saved = load_config(straight_run / "config.yaml")
    assert saved.model.num_classes == len(CLASSES) + 1  # from the data: classes + background

    records = read_metrics(straight_run)
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "eval" in r] == [3, 6]
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in records if "loss" in r)
    assert {"AP", "AP50", "AR100", "ms_per_image"} <= set(records[-1]["eval"])

    state = load_checkpoint(straight_run / "checkpoints" / "last.pth")
    assert state["step"] == 6
    assert state["class_names"] == list(CLASSES)
    assert state["label_to_cat"] == {k: k for k in range(1, len(CLASSES) + 1)}
    assert state["config"]["model"]["num_classes"] == len(CLASSES) + 1
    assert state["metrics_step"] == 6
    evals = [r["eval"]["AP"] for r in records if "eval" in r]
    assert state["best_metric"] == pytest.approx(max(evals))


def test_resume_repeats_the_uninterrupted_run(straight_run, tiny_config, tmp_path):
    run = tmp_path / "stopped"
    config = str(tiny_config)
    assert cli.main(["train", "--config", config, "train.steps=3", "--out", str(run)]) == 0
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == [1, 2, 3]
    # The second half loads the images in a worker process: the batches must not change.
    assert cli.main(["train", "--config", config, "data.workers=1", "--out", str(run), "--resume"]) == 0

    assert losses(run) == pytest.approx(losses(straight_run), rel=1e-6, abs=1e-6)
    resumed, straight = read_metrics(run), read_metrics(straight_run)
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    a = load_checkpoint(run / "checkpoints" / "last.pth")["model"]
    b = load_checkpoint(straight_run / "checkpoints" / "last.pth")["model"]
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_resuming_a_finished_run_returns_its_metrics(straight_run, tiny_config):
    before = read_metrics(straight_run)
    metrics = train(load_config(tiny_config), straight_run, resume=True)
    assert metrics == pytest.approx(before[-1]["eval"], nan_ok=True)
    assert read_metrics(straight_run) == before


def test_existing_run_and_missing_run(straight_run, tiny_config, tmp_path, capsys):
    assert cli.main(["train", "--config", str(tiny_config), "--out", str(straight_run)]) == 2
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no run to resume"):
        train(load_config(tiny_config), tmp_path / "empty", resume=True)


def test_init_from_loads_the_weights_only(straight_run, tiny_config, tmp_path):
    source = straight_run / "checkpoints" / "last.pth"
    cfg = load_config(tiny_config, ["train.steps=1", "train.lr=1e-12", "model.template=1", *NO_VAL])
    run = tmp_path / "mixed"
    assert train(cfg, run, init_from=source) == {}  # no val set: no metrics
    start, after = load_checkpoint(source), load_checkpoint(run / "checkpoints" / "last.pth")
    assert after["step"] == 1 and after["config"]["model"]["template"] == 1
    assert after["model"].keys() == start["model"].keys()
    for key, value in start["model"].items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # batch-norm statistics move with every training step, whatever the lr
        torch.testing.assert_close(after["model"][key], value, rtol=0, atol=1e-6)

    other = load_config(tiny_config, ["train.steps=1", "model.out_channels=16", *NO_VAL])
    with pytest.raises(ConfigError, match="--init-from .* do not fit"):
        train(other, tmp_path / "other", init_from=source)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    import mrae.detector

    build = mrae.detector.build_detector
    calls = {"n": 0}

    def build_poisoned(**kwargs):
        model = build(**kwargs)
        forward = model.forward

        def poisoned(images, targets=None):
            out = forward(images, targets)
            if model.training:
                calls["n"] += 1
                if calls["n"] == 3:
                    out = {k: v * math.nan for k, v in out.items()}
            return out

        model.forward = poisoned
        return model

    monkeypatch.setattr(mrae.detector, "build_detector", build_poisoned)
    cfg = load_config(tiny_config, ["train.checkpoint_every=1", "train.keep_last=5", *NO_VAL])
    run = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"diverged at step 3: the loss is not finite \(loss=nan") as error:
        train(cfg, run)
    assert "\n" not in str(error.value) and str(run / "checkpoints" / "last.pth") in str(error.value)
    state = load_checkpoint(run / "checkpoints" / "last.pth")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "last.pth", "step_0000001.pth", "step_0000002.pth"
    ]
    assert [r["step"] for r in read_metrics(run)] == [1, 2]


def test_huge_lr_diverges_with_exit_code_2(tiny_config, tmp_path, capsys):
    args = ["train", "--config", str(tiny_config), "train.lr=1e6", "train.warmup_steps=0",
            "train.checkpoint_every=1", *NO_VAL, "--out", str(tmp_path / "huge")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    match = re.fullmatch(r"mrae train: error: training diverged at step (\d+): the (loss|gradient norm) "
                         r"is not finite \(.*\); .*lower train\.lr.*", err)
    assert match, err
    step = int(match.group(1))
    if step > 1:
        assert load_checkpoint(tmp_path / "huge" / "checkpoints" / "last.pth")["step"] == step - 1
