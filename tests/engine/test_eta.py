"""The expected time said before the long part of a run: a warm-up's measured steps times the steps
left, beside this machine's measured GFLOP/s and load."""

from __future__ import annotations

import pytest
import torch

from mrae.engine import eta
from mrae.engine.eta import WarmupTimer, duration, expected_line, matmul_gflops


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
