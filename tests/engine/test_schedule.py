"""The lr schedule: linear warm-up, then gamma at each milestone."""

from __future__ import annotations

import pytest
import torch

from mrae.engine.schedule import build_scheduler, lr_factor


def test_piecewise_constant_at_milestones():
    factor = lr_factor([600_000, 900_000], gamma=0.1)
    assert factor(0) == 1.0
    assert factor(599_999) == 1.0
    assert factor(600_000) == pytest.approx(0.1)
    assert factor(899_999) == pytest.approx(0.1)
    assert factor(900_000) == pytest.approx(0.01)


def test_linear_warmup_then_decay():
    factor = lr_factor([20], gamma=0.5, warmup_steps=10, warmup_factor=0.1)
    assert factor(0) == pytest.approx(0.1)
    assert factor(5) == pytest.approx(0.55)
    assert factor(10) == 1.0
    assert factor(25) == 0.5


def test_scheduler_steps_the_optimizer_lr():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=3e-4, momentum=0.9)
    scheduler = build_scheduler(optimizer, [2, 4], gamma=0.1)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([3e-4, 3e-4, 3e-5, 3e-5, 3e-6])


def test_a_schedule_whose_milestones_or_warm_up_pass_the_last_step_is_warned_of():
    from mrae.engine.schedule import schedule_warning

    assert schedule_warning(300, [210, 270], 30) is None
    note = schedule_warning(100, [70, 210, 270], 10)
    assert note.startswith("train.milestones 210, 270 lie at or after the last step (train.steps=100)")
    assert "warmup" not in note
    assert "train.warmup_steps=120 is not shorter than train.steps=100" in schedule_warning(100, [], 120)
