"""Hooks: what a training run does around its steps (timing, the expected time, logs, evaluation,
checkpoints).

:meth:`mrae.engine.trainer.Trainer.train` calls, on every hook in its list order::

    before_train()
    for each step:  before_step()  [Trainer.run_step()]  after_step()
    after_train()          # after the last step; not when a step raised
    close()                # always, last: files and progress bars are released

A hook sees the run through one narrow object, :class:`TrainState` (``self.state``, set when the
hook is registered), which the trainer and its hooks share: ``step`` (steps done; during
``after_step`` it counts the step just taken), ``max_steps``, ``is_main``, ``losses`` (the last
step's), ``lr`` (the next step's), ``stats``, ``log`` (the run's
:class:`~mrae.engine.metrics_log.MetricsLog`, None on ranks other than 0), ``metrics``,
``metrics_step``, ``best``, ``improved`` and ``good`` (the newest checkpoint known to be good).
Whatever else a hook needs it takes in its constructor, as detectron2's hooks do: the
:class:`EvalHook` takes the evaluation as a function, the :class:`Checkpointer` the file and a
function that returns the checkpoint's contents. A hook never sees the trainer, and this module
does not import it (no import circle; ``tests/engine/test_hooks.py`` checks it).

The default list, :meth:`~mrae.engine.trainer.Trainer.build_hooks`, is in this order, which
matters: the timer stops before anything else runs after a step, and the evaluation comes before
the checkpoint that stores its result::

    StepTimer  ->  ExpectedTime  ->  MetricsWriter  ->  StallWatch  ->  EvalHook  ->  Checkpointer

(``StallWatch``, in :mod:`mrae.engine.stall`, warns when a loss part stops moving.)

Every process runs the same hooks: the evaluation and the checkpoints take part in collectives
(:mod:`mrae.engine.distributed`); rank 0 alone writes files and logs.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from mrae.engine import distributed
from mrae.engine.checkpoint import save_checkpoint
from mrae.engine.eta import MEASURED, SKIP, WarmupTimer, expected_line
from mrae.engine.run_folder import link_or_copy, prune_step_checkpoints

if TYPE_CHECKING:
    from mrae.engine.metrics_log import MetricsLog

logger = logging.getLogger(__name__)

# A metrics key: 1.0 when an evaluation ran on only part of the val set (a learning-curve point,
# ``eval.curve_max_images``); such metrics are logged but never compared for ``best.pth``.
PARTIAL = "partial"


@dataclass
class StepStats:
    """What the hooks share about the steps, kept in every checkpoint: the sums of the losses and
    the seconds since the last log record (``count`` steps), the training time so far (the steps
    with their data wait, not the evaluations and checkpoints) and the evaluations' time so far;
    both clocks go on across resumes (the work a resume repeats is counted once)."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0

    def add_losses(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def reset_window(self) -> None:
        self.sums, self.count, self.seconds = {}, 0, 0.0


@dataclass(eq=False)
class TrainState:
    """The run's state that the trainer and its hooks share: the whole interface between them.

    The trainer sets ``step``, ``losses`` and ``lr`` around each step (and ``log`` while it
    trains); the hooks read them and keep the rest: the timing (``stats``), the last evaluation
    (``metrics`` at ``metrics_step``), the best value of ``train.best_metric`` (``best``;
    ``improved``: a new best that ``best.pth`` does not hold yet) and ``good``. A checkpoint
    stores ``step``, ``stats``, ``metrics``, ``metrics_step`` and ``best``; a resumed run starts
    from them.
    """

    max_steps: int
    is_main: bool = True  #: rank 0, the process that writes files and logs
    step: int = 0  #: steps done
    losses: dict[str, float] = field(default_factory=dict)  #: the last step's, ``loss`` and its parts
    lr: float = math.nan  #: the lr of the next step
    stats: StepStats = field(default_factory=StepStats)
    log: MetricsLog | None = None  #: the run's log while it trains, on rank 0
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_step: int | None = None
    best: float | None = None
    improved: bool = False
    good: Path | None = None  #: the newest checkpoint known to hold finite, intact weights


class HookBase:
    """A hook: override the methods it needs; each default does nothing. ``self.state`` is the
    run's :class:`TrainState`, set when the trainer registers the hook."""

    state: TrainState

    def before_train(self) -> None:
        """Before the first step of this call (a resumed run starts at its checkpoint's step)."""

    def after_train(self) -> None:
        """After the last step (also when a resumed run had no step left to take)."""

    def before_step(self) -> None:
        """Before each step."""

    def after_step(self) -> None:
        """After each step; ``state.step`` counts the step just taken."""

    def close(self) -> None:
        """Last, also when training stopped with an error: release what the hook holds."""


class StepTimer(HookBase):
    """Times each step (its data wait included) into ``state.stats``: the seconds since the last
    log record and the training time so far, which leaves out evaluations and checkpoints."""

    def before_step(self) -> None:
        self._start = time.perf_counter()

    def after_step(self) -> None:
        elapsed = time.perf_counter() - self._start
        stats = self.state.stats
        stats.seconds += elapsed
        stats.train_seconds += elapsed


class ExpectedTime(HookBase):
    """After the warm-up steps, logs the expected training time of the steps left (the timing
    maths of :mod:`mrae.engine.eta`; evaluations not counted: their number is said, from
    ``eval_every`` and ``has_val``: one after the last step when there is a val set). Silent when
    the run is too short for a warm-up."""

    def __init__(self, eval_every: int = 0, has_val: bool = False) -> None:
        self.eval_every = int(eval_every)
        self.has_val = has_val

    def before_train(self) -> None:
        s = self.state
        self.timer = WarmupTimer(s.step)
        self.active = s.is_main and s.max_steps - s.step > SKIP + MEASURED

    def before_step(self) -> None:
        if self.active:
            self.timer.begin()

    def after_step(self) -> None:
        if not self.active or not self.timer.end():
            return
        s, every = self.state, self.eval_every
        left = s.max_steps - s.step
        evals = (left // every if every > 0 else 0) + (1 if self.has_val else 0)
        extra = f"plus {evals} evaluation{'s' * (evals != 1)}" if evals else ""
        first, last = self.timer.measured_steps
        logger.info(expected_line("mrae train", self.timer.step_seconds, left, first, last, extra))


class MetricsWriter(HookBase):
    """Every ``every`` steps (and after the last) one record of the mean losses, the lr and the
    timing (``step_seconds``, ``images_per_s``, ``train_seconds``) in ``metrics.jsonl``; a tqdm bar
    on a terminal, else one plain progress line per record (``step 10/150  loss ...  lr ...  img/s
    training time left ...``).

    Args:
        every: steps between records.
        name: the run's name, on the progress bar.
        images_per_step: the images of one step over all processes (for ``images_per_s``).
    """

    def __init__(self, every: int, name: str = "", images_per_step: int = 1) -> None:
        self.every = every
        self.name = name
        self.images_per_step = images_per_step
        self.bar: tqdm | None = None

    def before_train(self) -> None:
        s = self.state
        self.bar = tqdm(
            total=s.max_steps, initial=s.step, desc=f"train {self.name}".rstrip(), unit="step",
            disable=None if s.is_main else True, dynamic_ncols=True,
        )

    def after_step(self) -> None:
        s = self.state
        s.stats.add_losses(s.losses)
        if self.bar is not None:
            self.bar.update()
            self.bar.set_postfix(loss=f"{s.losses['loss']:.3f}", lr=f"{s.lr:.2g}", refresh=False)
        if s.step % self.every == 0 or s.step == s.max_steps:
            self.write()

    def write(self) -> None:
        """Log the window's means and start a new window."""
        s, stats = self.state, self.state.stats
        if s.log is not None and stats.count:
            means = {k: v / stats.count for k, v in stats.sums.items()}
            step_seconds = stats.seconds / stats.count
            timing = {
                "step_seconds": step_seconds,
                "images_per_s": self.images_per_step / step_seconds,
                "train_seconds": stats.train_seconds,
            }
            s.log.log_train(s.step, means, s.lr, timing)
            if not sys.stderr.isatty():  # no progress bar (a log file, a batch job): a plain line
                left = (s.max_steps - s.step) * step_seconds
                logger.info(f"step {s.step}/{s.max_steps}  loss {means['loss']:.4f}  "
                            f"lr {s.lr:.3g}  {timing['images_per_s']:.2f} img/s  "
                            f"training time left {left / 60:.1f} min")
        stats.reset_window()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EvalHook(HookBase):
    """Every ``every`` steps (0: none) and after the last, run ``evaluate`` and follow
    ``best_metric``: ``state.best`` is its best value and ``state.improved`` says that the
    :class:`Checkpointer` has a new ``best.pth`` to keep. A resumed run whose last step has no
    evaluation yet gets one in ``after_train``.

    Args:
        every: steps between evaluations (0: only after the last step).
        evaluate: the evaluation, a function of no arguments that returns the metrics
            (``{name: value}``) in every process; it does its own collectives (the trainer's,
            :meth:`~mrae.engine.trainer.Trainer.evaluate`, evaluates on rank 0 and sends the
            result to the others). None: nothing to evaluate (no val set), the hook does nothing.
        best_metric: the metric whose highest value makes ``best.pth`` (NaN never counts).
    """

    def __init__(self, every: int, evaluate: Callable[[], Mapping[str, float]] | None = None,
                 best_metric: str = "AP") -> None:
        self.every = every
        self.evaluate_fn = evaluate
        self.best_metric = best_metric

    def after_step(self) -> None:
        s = self.state
        if self.evaluate_fn is not None and (
            (self.every and s.step % self.every == 0) or s.step == s.max_steps
        ):
            self.evaluate()

    def after_train(self) -> None:
        s = self.state
        if self.evaluate_fn is not None and s.metrics_step != s.step:  # e.g. resumed a finished run
            self.evaluate()

    def evaluate(self) -> None:
        """Evaluate now: log the metrics, keep them in the state, follow the best value."""
        if self.evaluate_fn is None:
            return
        s = self.state
        started = time.perf_counter()
        metrics = dict(self.evaluate_fn())
        s.stats.eval_seconds += time.perf_counter() - started
        if s.log is not None:
            s.log.log_eval(s.step, metrics, train_seconds=s.stats.train_seconds,
                           eval_seconds=s.stats.eval_seconds)
        if s.is_main:
            shown = ", ".join(f"{k} {100 * metrics[k]:.1f}" for k in ("AP", "AP50", "AR100") if k in metrics)
            logger.info(f"step {s.step}: {shown}")
        s.metrics, s.metrics_step = metrics, s.step
        value = metrics.get(self.best_metric, math.nan)
        if metrics.get(PARTIAL):  # a curve point on fewer images: not comparable with the last
            return
        if not math.isnan(value) and (s.best is None or value > s.best):
            s.best = float(value)
            s.improved = True


class Checkpointer(HookBase):
    """``last`` (``checkpoints/last.pth``) every ``every`` steps (0: none) and after the last, with
    a hard link ``step_<step>.pth`` beside it of which the newest ``keep_last`` stay; ``best.pth``
    when the evaluation improved (a link to ``last`` when that was just written).

    ``state_dict`` is a function of no arguments that returns the checkpoint's contents; every
    process calls it (it may be a collective), rank 0 writes the files. The trainer's,
    :meth:`~mrae.engine.trainer.Trainer.state_dict`, checks the weights first: weights that are not
    finite are never written (:class:`~mrae.errors.TrainingDiverged` instead).
    """

    def __init__(self, every: int, keep_last: int, last: str | Path,
                 state_dict: Callable[[], dict[str, Any]]) -> None:
        self.every = every
        self.keep_last = keep_last
        self.last = Path(last)
        self.state_dict = state_dict

    def before_train(self) -> None:
        self._saved = self._moment()  # a fresh run's step 0 or the checkpoint it resumed

    def after_step(self) -> None:
        s = self.state
        if (self.every and s.step % self.every == 0) or s.step == s.max_steps:
            self.save_last()
        self._keep_best()

    def after_train(self) -> None:
        if self._moment() != self._saved:  # an evaluation after the last step changed the state
            self.save_last()
        self._keep_best()

    def save_last(self) -> None:
        s, last = self.state, self.last
        contents = self.state_dict()  # a collective: every process takes part
        if s.is_main:
            save_checkpoint(last, contents)
            if self.keep_last > 0:
                link_or_copy(last, last.parent / f"step_{s.step:07d}.pth")
            prune_step_checkpoints(last.parent, self.keep_last)
        distributed.barrier()
        s.good = last
        self._saved = self._moment()

    def _keep_best(self) -> None:
        s = self.state
        if not s.improved:
            return
        best = self.last.parent / "best.pth"
        if self._saved == self._moment():  # last.pth holds this state
            if s.is_main:
                link_or_copy(self.last, best)
        else:
            contents = self.state_dict()
            if s.is_main:
                save_checkpoint(best, contents)
        s.improved = False

    def _moment(self) -> tuple[int, int | None]:
        return self.state.step, self.state.metrics_step
