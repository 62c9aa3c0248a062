"""The expected time said before the long part of a run: a warm-up's measured steps times the steps
left, beside this machine's measured GFLOP/s and load."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from mrae.engine import eta
from mrae.engine.eta import ExpectedTime, WarmupTimer, duration, expected_line, matmul_gflops
from mrae.engine.hooks import TrainState
from mrae.engine.trainer import Trainer


def test_the_warmup_times_the_steps_after_the_first_and_says_so_once() -> None:
    timer = WarmupTimer(start_step=100)  # a resumed run: steps are counted over the whole run
    ready = []
    for _ in range(10):
        timer.begin()
        ready.append(timer.end())
    assert ready.count(True) == 1 and ready.index(True) == eta.SKIP + eta.MEASURED - 1
    assert len(timer.seconds) == eta.MEASURED and timer.step_seconds >= 0
    assert timer.measured_steps == (100 + eta.SKIP + 1, 100 + eta.SKIP + eta.MEASURED)


def test_the_line_says_time_steps_and_the_machine(monkeypatch) -> None:
    monkeypatch.setattr(eta, "matmul_gflops", lambda: 61.6)
    line = expected_line("mrae train", 0.72, 1000, 2, 5, "plus 4 evaluations")
    assert line.startswith("mrae train: expected about 12 min for the 1,000 steps left (0.72 s/step, "
                           "measured over steps 2-5; plus 4 evaluations); this machine now: 62 "
                           "GFLOP/s float32 matmul at ")
    assert "\n" not in line
    assert [duration(s) for s in (45, 720, 8280)] == ["45 s", "12 min", "2.3 h"]
    assert "for the 1 step left" in expected_line("mrae pretrain", 1.0, 1, 2, 5)


def test_matmul_gflops_is_a_positive_measurement_that_leaves_the_runs_random_numbers() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    assert 0 < matmul_gflops(n=128, repeats=2) < 1e6
    assert torch.equal(torch.rand(3), expected)  # a resumed run repeats an uninterrupted one


def test_matmul_gflops_at_a_thread_count_restores_the_callers_threads(monkeypatch) -> None:
    from mrae.engine import eta

    seen = []
    monkeypatch.setattr(eta, "matmul_gflops", lambda: seen.append(torch.get_num_threads()) or 10.0)
    before = torch.get_num_threads()
    assert eta.matmul_gflops_at(1) == 10.0 and seen == [1]
    assert torch.get_num_threads() == before


def _state(steps: int) -> TrainState:
    return TrainState(max_steps=steps, is_main=True)


def _run(hook: ExpectedTime, state: TrainState) -> None:
    hook.state = state
    hook.before_train()
    while state.step < state.max_steps:
        hook.before_step()
        state.step += 1
        hook.after_step()


def test_the_hook_logs_the_steps_left_and_the_evaluations(caplog, monkeypatch) -> None:
    monkeypatch.setattr(eta, "matmul_gflops", lambda: 50.0)
    caplog.set_level(logging.INFO, logger="mrae")
    _run(ExpectedTime(eval_every=10, has_val=True), _state(steps=25))
    lines = [r.getMessage() for r in caplog.records if "expected about" in r.getMessage()]
    done = eta.SKIP + eta.MEASURED
    assert len(lines) == 1 and f"for the {25 - done} steps left" in lines[0]
    assert "plus 3 evaluations" in lines[0]  # at 10 and 20, and after the last step
    caplog.clear()
    _run(ExpectedTime(eval_every=0, has_val=True), _state(steps=done))  # too short: nothing to say
    assert not [r for r in caplog.records if "expected about" in r.getMessage()]


def test_the_trainer_times_the_warmup_right_after_the_step_timer() -> None:
    fake = SimpleNamespace(cfg=SimpleNamespace(name="fake", train=SimpleNamespace(
        log_every=10, eval_every=0, checkpoint_every=0, keep_last=1, batch_size=2, best_metric="AP")),
        has_val=False, process=SimpleNamespace(world_size=1), last="last.pth", state_dict=dict)
    names = [type(h).__name__ for h in Trainer.build_hooks(fake)]  # type: ignore[arg-type]
    assert names[:2] == ["StepTimer", "ExpectedTime"]


@pytest.mark.usefixtures("one_thread")
def test_pretrain_says_its_expected_time(tmp_path, capsys) -> None:
    from mrae.cli import main as cli

    config = tmp_path / "c.yaml"
    config.write_text("model:\n  backbone: resnet18\n")
    steps = eta.SKIP + eta.MEASURED + 2
    assert cli(["pretrain", "--config", str(config), "--out", str(tmp_path / "w.pth"),
                "pretrain.scenes=2", "pretrain.val_scenes=1", "pretrain.crop_size=16",
                f"pretrain.steps={steps}", "pretrain.batch_size=4"]) == 0
    err = capsys.readouterr().err
    assert "mrae pretrain: expected about" in err and "for the 2 steps left" in err
    assert "crops took" in err and "GFLOP/s float32 matmul" in err
    assert torch.get_num_threads() == 1
