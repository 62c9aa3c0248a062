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


def schedule_warning(steps: int, milestones: Sequence[int], warmup_steps: int = 0) -> str | None:
    """A one-line note where the schedule cannot be what was meant: milestones at or beyond the
    last step (the lr never drops there: ``train.steps`` shortened, ``train.milestones`` left) or a
    warm-up as long as the run; None where it is sound."""
    notes = []
    late = [m for m in milestones if m >= steps]
    if late:
        notes.append(f"train.milestones {', '.join(map(str, late))} {'lies' if len(late) == 1 else 'lie'} "
                     "at or after the last step "
                     f"(train.steps={steps}): the learning rate never drops there; give milestones "
                     "within the schedule (the recipe: 70% and 90% of the steps)")
    if warmup_steps >= steps:
        notes.append(f"train.warmup_steps={warmup_steps} is not shorter than train.steps={steps}: "
                     "the learning rate never reaches train.lr")
    return "; ".join(notes) or None


def build_scheduler(
    optimizer: Optimizer,
    milestones: Sequence[int],
    gamma: float,
    warmup_steps: int = 0,
    warmup_factor: float = 0.001,
) -> LambdaLR:
    """A ``LambdaLR`` stepped once per optimiser step; its state dict holds the step count."""
    return LambdaLR(optimizer, lr_factor(milestones, gamma, warmup_steps, warmup_factor))
