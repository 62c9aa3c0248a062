"""Training through `mrae train`: logs, checkpoints, exact resume, --init-from, divergence, and
resuming after damage (a damaged last.pth, a torn metrics line, a killed save's temp files)."""

from __future__ import annotations

import math
import os
import re
import shutil
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
    # The run's clocks go on across the resume: the second process adds to what the first measured.
    first_eval = next(r for r in resumed if "eval" in r)
    last_eval = [r for r in resumed if "eval" in r][-1]
    assert 0 < first_eval["eval_seconds"] < last_eval["eval_seconds"]
    assert first_eval["train_seconds"] < last_eval["train_seconds"]
    state = load_checkpoint(run / "checkpoints" / "last.pth")
    assert state["eval_seconds"] == pytest.approx(last_eval["eval_seconds"], abs=0.01)
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
    import mrae.modeling.detector

    build = mrae.modeling.detector.build_detector
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

    monkeypatch.setattr(mrae.modeling.detector, "build_detector", build_poisoned)
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


def test_sigterm_stops_the_run_with_a_line_that_says_how_to_resume(tiny_config, tmp_path, monkeypatch, capsys):
    import signal

    import mrae.modeling.detector

    build = mrae.modeling.detector.build_detector
    calls = {"n": 0}

    def build_stopped(**kwargs):
        model = build(**kwargs)
        forward = model.forward

        def stopped(images, targets=None):
            if model.training:
                calls["n"] += 1
                if calls["n"] == 2:  # the second step: as `kill PID` would
                    os.kill(os.getpid(), signal.SIGTERM)
            return forward(images, targets)

        model.forward = stopped
        return model

    monkeypatch.setattr(mrae.modeling.detector, "build_detector", build_stopped)
    previous = signal.getsignal(signal.SIGTERM)
    run = tmp_path / "stopped"
    code = cli.main(["train", "--config", str(tiny_config), "--out", str(run), "train.checkpoint_every=1",
                     *NO_VAL])
    assert code == 130 and signal.getsignal(signal.SIGTERM) is previous
    err = capsys.readouterr().err
    assert "interrupted at step 1 of 6" in err and "--resume" in err and "Traceback" not in err
    assert load_checkpoint(run / "checkpoints" / "last.pth")["step"] == 1


def test_huge_lr_diverges_with_exit_code_2(tiny_config, tmp_path, capsys):
    args = ["train", "--config", str(tiny_config), "train.lr=1e6", "train.warmup_steps=0",
            "train.checkpoint_every=1", *NO_VAL, "--out", str(tmp_path / "huge")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    match = re.fullmatch(r"mrae train: error: training diverged at step (\d+): the (loss|gradient norm "
                         r"is|weights are) not finite \(.*\); .*lower train\.lr.*", err)
    assert match, err
    step = int(match.group(1))
    if step > 1:
        state = load_checkpoint(tmp_path / "huge" / "checkpoints" / "last.pth")
        assert state["step"] == step - 1
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_non_finite_weights_are_never_saved(tiny_config, tmp_path, monkeypatch):
    """A step whose loss and gradient are finite but whose update blows a weight up (an lr that
    overflows) stops the run before that state is saved or evaluated."""
    from mrae.engine.trainer import Trainer

    take_step = Trainer.run_step

    def blow_up_at_step_2(self):
        losses = take_step(self)
        if self.step == 1:  # the second step (self.step counts the steps done before it)
            with torch.no_grad():
                self.params[0].view(-1)[:5] = math.inf
        return losses

    monkeypatch.setattr(Trainer, "run_step", blow_up_at_step_2)
    cfg = load_config(tiny_config, ["train.steps=3", "train.checkpoint_every=1", "train.keep_last=5",
                                    *NO_VAL])
    run = tmp_path / "inf"
    with pytest.raises(TrainingDiverged, match=r"diverged at step 2: the weights are not finite "
                                               r"\(.*: 5 of \d+ values\)") as error:
        train(cfg, run)
    last = run / "checkpoints" / "last.pth"
    assert "\n" not in str(error.value) and f"the last good checkpoint is {last}" in str(error.value)
    state = load_checkpoint(last)
    assert state["step"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pth", "step_0000001.pth"]


def _copy_run(run: Path, to: Path) -> Path:
    """A copy of a finished run to damage (hard links become separate files)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def _overwrite_4_kib(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))


def test_resume_falls_back_to_the_newest_intact_step_checkpoint(straight_run, tiny_config, tmp_path, capsys):
    run = _copy_run(straight_run, tmp_path / "damaged")
    last, step_file = run / "checkpoints" / "last.pth", run / "checkpoints" / "step_0000006.pth"
    _overwrite_4_kib(last)
    before = read_metrics(straight_run)
    capsys.readouterr()

    metrics = train(load_config(tiny_config), run, resume=True)  # the run is finished at step 6
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "damaged" in line]
    assert lines == [f"resume: {last} is damaged; resuming from {step_file} (step 6), the newest "
                     "intact step checkpoint, which replaces it"]
    assert metrics == pytest.approx(before[-1]["eval"], nan_ok=True)
    assert load_checkpoint(last)["step"] == 6  # last.pth holds the intact state again


def test_resume_with_no_intact_checkpoint_is_a_one_line_error(straight_run, tiny_config, tmp_path, capsys):
    run = _copy_run(straight_run, tmp_path / "ruined")
    _overwrite_4_kib(run / "checkpoints" / "last.pth")
    step_file = run / "checkpoints" / "step_0000006.pth"
    step_file.write_bytes(step_file.read_bytes()[:1000])  # truncated
    code = cli.main(["train", "--config", str(tiny_config), "--out", str(run), "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "last.pth is damaged and no step_*.pth" in err and "intact" in err


def test_resume_below_the_checkpoints_step_is_refused(straight_run, tiny_config, tmp_path, capsys):
    run = _copy_run(straight_run, tmp_path / "shorter")
    config = (run / "config.yaml").read_text()
    code = cli.main(["train", "--config", str(tiny_config), "train.steps=3", "--out", str(run), "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "at step 6, past train.steps=3" in err
    assert (run / "config.yaml").read_text() == config  # the run's config is not relabelled


def test_a_torn_last_metrics_line_does_not_block_resume(straight_run, tiny_config, tmp_path, capsys):
    run = _copy_run(straight_run, tmp_path / "torn")
    before = read_metrics(straight_run)
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 6, "loss": 0.83, "lo')  # killed while writing the line
    capsys.readouterr()
    metrics = train(load_config(tiny_config), run, resume=True)
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "half-written" in line] == [
        f"resume: dropped the half-written last line {len(before) + 1} of {run / 'metrics.jsonl'} "
        "(the run was stopped while writing it)"
    ]
    assert metrics == pytest.approx(before[-1]["eval"], nan_ok=True)
    assert read_metrics(run) == before
    assert (run / "metrics.jsonl").read_text().endswith("}\n")


def test_resume_removes_the_temporary_files_of_a_killed_save(straight_run, tiny_config, tmp_path):
    run = _copy_run(straight_run, tmp_path / "killed")
    dead = 99_999_999  # above Linux's largest pid: no running process
    stale = [run / "checkpoints" / f".last.pth.{dead}.tmp", run / f".config.yaml.{dead}.tmp",
             run / "checkpoints" / f".best.pth.{os.getpid()}.tmp"]  # a killed predecessor's pid
    kept = [run / "checkpoints" / f".last.pth.{os.getppid()}.tmp",  # a running process's
            run / "notes.tmp", run / "checkpoints" / "mine.tmp"]  # not ours
    for path in stale + kept:
        path.write_bytes(b"partial")
    train(load_config(tiny_config), run, resume=True)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)


def test_init_from_a_damaged_checkpoint_is_a_one_line_error(straight_run, tiny_config, tmp_path, capsys):
    source = tmp_path / "copied.pth"
    shutil.copyfile(straight_run / "checkpoints" / "last.pth", source)
    _overwrite_4_kib(source)
    code = cli.main(["train", "--config", str(tiny_config), "train.steps=1", *NO_VAL,
                     "--init-from", str(source), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith(f"mrae train: error: {source}: the checkpoint is damaged")
    assert not (tmp_path / "run" / "checkpoints" / "last.pth").exists()


def test_a_pretrained_run_resumes_and_continues_with_its_own_structure(tiny_config, tmp_path):
    """Resume and --init-from rebuild the model of trained weights (frozen batch norm; conv1 and
    layer1 frozen by torchvision's default) without reading the weights again."""
    import torchvision

    weights = tmp_path / "trunk.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    config = [f"model.pretrained={weights}", "model.trainable_layers=null"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(load_config(tiny_config, config), straight)
    train(load_config(tiny_config, [*config, "train.steps=3"]), stopped)
    weights.unlink()  # resuming must not need the weights file
    train(load_config(tiny_config, config), stopped, resume=True)
    assert losses(stopped) == pytest.approx(losses(straight), rel=1e-6, abs=1e-6)

    # --init-from continues with the same structure: conv1, layer1 and every batch norm stay frozen.
    source = straight / "checkpoints" / "last.pth"
    train(load_config(tiny_config, [*config, "train.steps=1", *NO_VAL]), tmp_path / "continued",
          init_from=source)
    start = load_checkpoint(source)["model"]
    after = load_checkpoint(tmp_path / "continued" / "checkpoints" / "last.pth")["model"]
    assert after.keys() == start.keys()
    assert not any(key.endswith("num_batches_tracked") for key in after)  # no learned batch norm
    for key, value in start.items():
        if ".body.conv1." in key or ".body.layer1." in key or "bn" in key or "downsample.1" in key:
            torch.testing.assert_close(after[key], value, rtol=0, atol=0)
    changed = [k for k in start if ".body.layer2." in k and not torch.equal(after[k], start[k])]
    assert changed  # layer2 trains


def test_a_fresh_run_resolves_its_pretrained_trunk_once_and_a_resumed_run_not_at_all(
        tiny_config, tmp_path, monkeypatch):
    import mrae.engine.pretrain

    calls = []
    real = mrae.engine.pretrain.resolve_pretrained
    monkeypatch.setattr(mrae.engine.pretrain, "resolve_pretrained",
                        lambda cfg, progress=True: calls.append(progress) or real(cfg, progress))
    run = tmp_path / "run"
    short = [*NO_VAL, "train.steps=1", "train.warmup_steps=0", "train.checkpoint_every=1"]
    train(load_config(tiny_config, short), run)
    assert calls == [True]  # on rank 0, with its progress bar, before the model is built
    train(load_config(tiny_config, [*short, "train.steps=2"]), run, resume=True)
    assert calls == [True]  # the weights are the checkpoint's
