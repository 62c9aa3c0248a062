"""mrae.engine.stall: a loss part that holds one value is said once, while training and from a
finished run's log, and a dead FCOS box regression is caught end to end."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from mrae.engine.config import load_config
from mrae.engine.distributed import setup
from mrae.engine.hooks import TrainState
from mrae.engine.stall import FlatStretch, StallWatch, stalled_in_log
from mrae.engine.trainer import Trainer


def test_a_moving_series_never_stalls_and_a_flat_one_is_said_once():
    moving = FlatStretch(steps=5)
    assert all(moving.add(step, 1.0 + 0.01 * (-1) ** step) is None for step in range(1, 40))
    flat = FlatStretch(steps=5)
    said = [flat.add(step, 0.7 + 0.01 * (-1) ** step if step < 10 else 1.0 + 1e-6 * step)
            for step in range(1, 40)]
    assert said[14] == (10, pytest.approx(1.0, abs=1e-4))  # step 15: 5 steps after step 10
    assert [s for s in said if s is not None] == [said[14]]  # once


def test_zero_and_non_finite_values_do_not_count():
    zero, gaps = FlatStretch(steps=3), FlatStretch(steps=3)
    assert all(zero.add(step, 0.0) is None for step in range(1, 20))
    assert all(zero.add(step, 2e-4) is None for step in range(20, 40))  # learned: may hold still
    values = [1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0]
    said = [gaps.add(step, v) for step, v in enumerate(values, start=1)]
    assert said[:6] == [None] * 6 and said[6] == (4, 1.0)  # the stretch restarts after the NaN


def test_the_hook_warns_once_per_part_naming_it(caplog):
    hook = StallWatch(steps=3)
    hook.state = TrainState(max_steps=20)
    with caplog.at_level(logging.WARNING, logger="mrae.engine.stall"):
        for step in range(1, 20):
            hook.state.step = step
            hook.state.losses = {"loss": 2.0 + step, "classification": 1.0 / step,
                                 "bbox_regression": 1.0, "grad_norm": 5.0}
            hook.after_step()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "'bbox_regression' has held 1.0000 since step 1" in messages[0]


def test_a_finished_runs_log_names_its_stalled_parts(tmp_path):
    log = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 3.0 - 0.01 * s, "classification": 1.0 - 0.01 * s,
                         "bbox_regression": 1.0 if s >= 30 else 1.3 - 0.01 * s, "grad_norm": 4.0,
                         "lr": 0.02, "step_seconds": 4.5, "images_per_s": 0.44, "train_seconds": 4.5 * s})
             for s in range(10, 310, 10)]
    lines.insert(8, json.dumps({"step": 75, "eval": {"AP": 0.0}}))
    log.write_text("\n".join(lines) + '\n{"step": 310, "loss"')  # a line cut short at the end
    assert stalled_in_log(log) == {"bbox_regression": {"since": 30, "value": 1.0}}
    assert stalled_in_log(tmp_path / "missing.jsonl") == {}


class DeadBoxesTrainer(Trainer):
    """FCOS whose box outputs all start far below zero: its ReLU passes no gradient."""

    def build_model(self, weights_later: bool) -> torch.nn.Module:
        model = super().build_model(weights_later)
        torch.nn.init.constant_(model.head.regression_head.bbox_reg.bias, -100.0)
        return model


@pytest.mark.usefixtures("one_thread")
def test_a_dead_fcos_box_regression_is_said_while_it_trains(host_run_config, tmp_path, caplog):
    cfg = load_config(host_run_config, ["model.detector=fcos", "model.extractor=single", "train.steps=55",
                                        "train.eval_every=0", "train.checkpoint_every=0",
                                        "data.val_images=null", "data.val_annotations=null"])
    trainer = DeadBoxesTrainer(cfg, tmp_path / "run", setup("cpu"))
    with caplog.at_level(logging.WARNING, logger="mrae.engine.stall"):
        trainer.train()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "'bbox_regression' has held 1.0000 since step 1" in said[0]
    assert set(stalled_in_log(tmp_path / "run" / "metrics.jsonl")) == {"bbox_regression"}
