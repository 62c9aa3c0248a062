"""The learning-rate schedule: optional linear warm-up, then piecewise constant at milestones."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(
    milestones: Sequence[int], gamma: float, warmup_steps: int = 0, warmup_factor: float = 0.001
) -> Callable[[int], float]:
    """``step -> factor`` of the base lr: ``gamma ** (milestones passed)`` times the warm-up ramp.

    The ramp goes linearly from ``warmup_factor`` at step 0 to 1 at ``warmup_steps``. A milestone
    ``m`` applies from step ``m`` on (the lr of step ``m`` is already multiplied by ``gamma``),
    as in torchvision's detection references.
    """
    milestones = sorted(milestones)

    def factor(step: int) -> float:
        decay = gamma ** bisect_right(milestones, step)
        if step < warmup_steps:
            alpha = step / warmup_steps
            return decay * (warmup_factor * (1 - alpha) + alpha)
        return decay

    return factor


def build_scheduler(
    optimizer: Optimizer,
    milestones: Sequence[int],
    gamma: float,
    warmup_steps: int = 0,
    warmup_factor: float = 0.001,
) -> LambdaLR:
    """A ``LambdaLR`` stepped once per optimiser step; its state dict holds the step count."""
    return LambdaLR(optimizer, lr_factor(milestones, gamma, warmup_steps, warmup_factor))
