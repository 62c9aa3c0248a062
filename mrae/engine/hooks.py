"""Hooks: what a training run does around its steps (timing, logs, evaluation, checkpoints).

:meth:`mrae.engine.trainer.Trainer.train` calls, on every hook in its list order::

    before_train()
    for each step:  before_step()  [Trainer.run_step()]  after_step()
    after_train()          # after the last step; not when a step raised
    close()                # always, last: files and progress bars are released

A hook reads and writes the trainer's state through ``self.trainer`` (set when it is registered):
``step`` (steps done; during ``after_step`` it counts the step just taken), ``max_steps``,
``losses`` (the last step's), ``stats``, ``log`` (the run's :class:`~mrae.engine.metrics_log.MetricsLog`,
None on ranks other than 0), ``metrics``, ``best``. The default list,
:meth:`~mrae.engine.trainer.Trainer.build_hooks`, is in this order, which matters: the timer
stops before anything else runs after a step, and the evaluation comes before the checkpoint that
stores its result::

    StepTimer  ->  MetricsWriter  ->  EvalHook  ->  Checkpointer

Every process runs the same hooks: the evaluation and the checkpoints take part in collectives
(:mod:`mrae.engine.distributed`); rank 0 alone writes files and logs.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tqdm import tqdm

from mrae.engine import distributed
from mrae.engine.checkpoint import link_or_copy, prune_step_checkpoints, save_checkpoint

if TYPE_CHECKING:
    from mrae.engine.trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass
class StepStats:
    """What the hooks share about the steps, kept in every checkpoint: the sums of the losses and
    the seconds since the last log record (``count`` steps), and the training time so far (the
    steps with their data wait, not the evaluations and checkpoints)."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0

    def add_losses(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def reset_window(self) -> None:
        self.sums, self.count, self.seconds = {}, 0, 0.0


class HookBase:
    """A hook: override the methods it needs; each default does nothing."""

    trainer: Trainer

    def before_train(self) -> None:
        """Before the first step of this call (a resumed run starts at its checkpoint's step)."""

    def after_train(self) -> None:
        """After the last step (also when a resumed run had no step left to take)."""

    def before_step(self) -> None:
        """Before each step."""

    def after_step(self) -> None:
        """After each step; ``trainer.step`` counts the step just taken."""

    def close(self) -> None:
        """Last, also when training stopped with an error: release what the hook holds."""


class StepTimer(HookBase):
    """Times each step (its data wait included) into ``trainer.stats``: the seconds since the last
    log record and the training time so far, which leaves out evaluations and checkpoints."""

    def before_step(self) -> None:
        self._start = time.perf_counter()

    def after_step(self) -> None:
        elapsed = time.perf_counter() - self._start
        stats = self.trainer.stats
        stats.seconds += elapsed
        stats.train_seconds += elapsed


class MetricsWriter(HookBase):
    """Every ``every`` steps (and after the last) one record of the mean losses, the lr and the
    timing (``step_seconds``, ``images_per_s``, ``train_seconds``) in ``metrics.jsonl``; a tqdm bar
    on a terminal, else one plain progress line per record (``step 10/150  loss ...  lr ...  img/s
    training time left ...``)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.bar: tqdm | None = None

    def before_train(self) -> None:
        tr = self.trainer
        self.bar = tqdm(
            total=tr.max_steps, initial=tr.step, desc=f"train {tr.cfg.name}", unit="step",
            disable=None if tr.process.is_main else True, dynamic_ncols=True,
        )

    def after_step(self) -> None:
        tr = self.trainer
        tr.stats.add_losses(tr.losses)
        if self.bar is not None:
            self.bar.update()
            self.bar.set_postfix(loss=f"{tr.losses['loss']:.3f}", lr=f"{tr.lr:.2g}", refresh=False)
        if tr.step % self.every == 0 or tr.step == tr.max_steps:
            self.write()

    def write(self) -> None:
        """Log the window's means and start a new window."""
        tr, stats = self.trainer, self.trainer.stats
        if tr.log is not None and stats.count:
            means = {k: v / stats.count for k, v in stats.sums.items()}
            step_seconds = stats.seconds / stats.count
            timing = {
                "step_seconds": step_seconds,
                "images_per_s": tr.cfg.train.batch_size * tr.process.world_size / step_seconds,
                "train_seconds": stats.train_seconds,
            }
            tr.log.log_train(tr.step, means, tr.lr, timing)
            if not sys.stderr.isatty():  # no progress bar (a log file, a batch job): a plain line
                left = (tr.max_steps - tr.step) * step_seconds
                logger.info(f"step {tr.step}/{tr.max_steps}  loss {means['loss']:.4f}  "
                            f"lr {tr.lr:.3g}  {timing['images_per_s']:.2f} img/s  "
                            f"training time left {left / 60:.1f} min")
        stats.reset_window()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EvalHook(HookBase):
    """Every ``every`` steps (0: none) and after the last, evaluate on the val set (rank 0; the
    others wait) and follow ``train.best_metric``: ``trainer.best`` is its best value and
    ``trainer.improved`` says that the :class:`Checkpointer` has a new ``best.pth`` to keep. A
    resumed run whose last step has no evaluation yet gets one in ``after_train``."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self) -> None:
        tr = self.trainer
        if tr.has_val and ((self.every and tr.step % self.every == 0) or tr.step == tr.max_steps):
            self.evaluate()

    def after_train(self) -> None:
        tr = self.trainer
        if tr.has_val and tr.metrics_step != tr.step:  # e.g. resumed a finished run
            self.evaluate()

    def evaluate(self) -> None:
        from mrae.evaluation.evaluator import evaluate_model

        tr = self.trainer
        tr.check_finite_weights()
        distributed.barrier()
        metrics = None
        if tr.process.is_main:
            metrics, _ = evaluate_model(
                tr.model, tr.val_set, device=tr.process.device,
                max_images=tr.cfg.eval.max_images, progress=False,
            )
            tr.log.log_eval(tr.step, metrics, train_seconds=tr.stats.train_seconds)
            shown = ", ".join(f"{k} {100 * metrics[k]:.1f}" for k in ("AP", "AP50", "AR100"))
            logger.info(f"step {tr.step}: {shown}")
        metrics = distributed.broadcast_object(metrics)
        tr.model.train()
        tr.metrics, tr.metrics_step = metrics, tr.step
        value = metrics.get(tr.cfg.train.best_metric, math.nan)
        if not math.isnan(value) and (tr.best is None or value > tr.best):
            tr.best = float(value)
            tr.improved = True


class Checkpointer(HookBase):
    """``checkpoints/last.pth`` every ``every`` steps (0: none) and after the last, with a hard
    link ``step_<step>.pth`` of which the newest ``keep_last`` stay; ``best.pth`` when the
    evaluation improved (a link to ``last.pth`` when that was just written). Weights that are not
    finite are never written (:class:`~mrae.engine.trainer.TrainingDiverged` instead)."""

    def __init__(self, every: int, keep_last: int) -> None:
        self.every = every
        self.keep_last = keep_last

    def before_train(self) -> None:
        self._saved = self._moment()  # a fresh run's step 0 or the checkpoint it resumed

    def after_step(self) -> None:
        tr = self.trainer
        if (self.every and tr.step % self.every == 0) or tr.step == tr.max_steps:
            self.save_last()
        self._keep_best()

    def after_train(self) -> None:
        if self._moment() != self._saved:  # an evaluation after the last step changed the state
            self.save_last()
        self._keep_best()

    def save_last(self) -> None:
        tr = self.trainer
        state = tr.state_dict()  # a collective: every process takes part
        if tr.process.is_main:
            save_checkpoint(tr.last, state)
            if self.keep_last > 0:
                link_or_copy(tr.last, tr.checkpoints / f"step_{tr.step:07d}.pth")
            prune_step_checkpoints(tr.checkpoints, self.keep_last)
        distributed.barrier()
        tr.good = tr.last
        self._saved = self._moment()

    def _keep_best(self) -> None:
        tr = self.trainer
        if not tr.improved:
            return
        best = tr.checkpoints / "best.pth"
        if self._saved == self._moment():  # last.pth holds this state
            if tr.process.is_main:
                link_or_copy(tr.last, best)
        else:
            state = tr.state_dict()
            if tr.process.is_main:
                save_checkpoint(best, state)
        tr.improved = False

    def _moment(self) -> tuple[int, int | None]:
        return self.trainer.step, self.trainer.metrics_step
