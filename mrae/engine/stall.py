"""Loss parts that stopped moving: a part of the model that no longer gets a gradient.

A loss computed on a new batch every step moves from step to step. One that holds the same value
for many steps does not depend on its inputs any more: the outputs it reads are cut off from the
gradient. The case met in practice: torchvision's FCOS puts a ReLU on its box regression, and
when every output of a run starts or falls below zero the boxes collapse to points, the GIoU
loss holds at exactly 1.0 and the run detects nothing (tianzhi0549/FCOS#310 reports the same).
:class:`StallWatch` warns once per such part while the run trains; :func:`stalled_in_log` finds
them in a finished run's ``metrics.jsonl`` (the study keeps them in its records).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from mrae.engine.hooks import HookBase

logger = logging.getLogger(__name__)

STALL_STEPS = 50  # steps a part must hold its value to count as stalled
STALL_TOLERANCE = 1e-4  # relative: |value - first| <= tolerance * max(1, |first|)
NEAR_ZERO = 1e-3  # a part this small has (nearly) nothing left to learn: it may hold still
NOT_PARTS = ("loss", "grad_norm")  # the sum of the parts, and not a loss
# the other keys of a training record of metrics.jsonl (mrae.engine.metrics_log.MetricsLog.log_train)
NOT_PARTS_IN_LOG = (*NOT_PARTS, "step", "lr", "step_seconds", "images_per_s", "train_seconds")


class FlatStretch:
    """Follows one series of (step, value) and says when it has held one value for ``steps``
    steps: :meth:`add` returns ``(first step of the stretch, its value)`` once, at that moment.
    A value under ``NEAR_ZERO`` does not count (a part with nothing to learn from, e.g. no ignore
    regions, is 0; one that has learned nearly everything moves by less than the tolerance)."""

    def __init__(self, steps: int = STALL_STEPS, tolerance: float = STALL_TOLERANCE) -> None:
        self.steps, self.tolerance = steps, tolerance
        self.start: tuple[int, float] | None = None
        self.said = False

    def add(self, step: int, value: float) -> tuple[int, float] | None:
        if not math.isfinite(value) or abs(value) < NEAR_ZERO:
            self.start = None
            return None
        if self.start is None or abs(value - self.start[1]) > self.tolerance * max(1.0, abs(self.start[1])):
            self.start = (step, value)
            return None
        if not self.said and step - self.start[0] >= self.steps:
            self.said = True
            return self.start
        return None


class LossStalls:
    """A :class:`FlatStretch` for each loss part of a run's steps (or log records): :meth:`add`
    takes one step's values and returns the parts that have just stalled, ``[(part, since,
    value)]``; keys in ``not_parts`` and values that are not numbers are not loss parts."""

    def __init__(self, steps: int = STALL_STEPS, tolerance: float = STALL_TOLERANCE,
                 not_parts: tuple[str, ...] = NOT_PARTS) -> None:
        self.steps, self.tolerance, self.not_parts = steps, tolerance, not_parts
        self.parts: dict[str, FlatStretch] = {}

    def add(self, step: int, values: dict) -> list[tuple[str, int, float]]:
        stalled = []
        for part, value in values.items():
            if part in self.not_parts or not isinstance(value, (int, float)):
                continue
            watch = self.parts.setdefault(part, FlatStretch(self.steps, self.tolerance))
            if (stall := watch.add(step, float(value))) is not None:
                stalled.append((part, *stall))
        return stalled


def stall_message(part: str, since: int, value: float, step: int) -> str:
    return (f"mrae train: the loss part {part!r} has held {value:.4f} since step {since} ({step - since} "
            "steps): what it trains gets no gradient and this run will not learn it (FCOS's "
            "bbox_regression does this when its ReLU'd box outputs all fall below zero; another "
            "train.seed may not)")


class StallWatch(HookBase):
    """Warns once for each loss part that holds one value for ``steps`` steps (see the module)."""

    def __init__(self, steps: int = STALL_STEPS, tolerance: float = STALL_TOLERANCE) -> None:
        self.stalls = LossStalls(steps, tolerance)

    def after_step(self) -> None:
        s = self.state
        for part, since, value in self.stalls.add(s.step, s.losses):
            if s.is_main:
                logger.warning(stall_message(part, since, value, s.step))


def stalled_in_log(path: str | Path, steps: int = STALL_STEPS) -> dict[str, dict[str, float]]:
    """The loss parts of a run's ``metrics.jsonl`` (its training records, window means) that held
    one value for ``steps`` steps: ``{part: {"since": step, "value": v}}``, the first stretch of
    each; ``{}`` when none did or the file is missing."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    stalls = LossStalls(steps, not_parts=NOT_PARTS_IN_LOG)
    found: dict[str, dict[str, float]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if not isinstance(record, dict) or "loss" not in record or "step" not in record:
            continue  # an evaluation's record
        for part, since, value in stalls.add(int(record["step"]), record):
            found[part] = {"since": since, "value": value}
    return found
