"""A run's logs: ``metrics.jsonl`` (one JSON object per line), TensorBoard events in ``tb/``, and
the lines a person reads (the ``mrae`` logger).

Training lines are ``{"step": s, "loss": mean total loss, "lr": lr, "loss_<part>": ...,
"grad_norm": ..., "step_seconds": s/step, "images_per_s": ..., "train_seconds": ...}`` and
evaluation lines ``{"step": s, "eval": {metric: value}, "train_seconds": ..., "eval_seconds": ...}``
(both clocks summed over resumes). A resumed run
first drops the lines written after the step it resumes from, so the file reads as one
uninterrupted run, and a half-written last line (a run killed while appending it) with a warning.

The library writes its messages to loggers under ``mrae`` (``logging.getLogger(__name__)``):
warnings, progress lines and evaluation results at INFO. :func:`log_to_stderr` shows them as plain
lines on stderr (the command line and :func:`mrae.engine.train.train` call it); a program that
gives the ``mrae`` logger a handler of its own first gets its records there instead.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mrae.errors import DataError
from mrae.files import write_text_atomic

logger = logging.getLogger(__name__)


class PlainStderrHandler(logging.Handler):
    """Each record as its message alone, one line on the current ``sys.stderr`` (looked up at
    every record, so a redirected stderr gets it), written through ``tqdm.write`` so that a
    progress bar on the terminal stays intact."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def log_to_stderr() -> None:
    """Show the ``mrae`` loggers' records (INFO and up) as plain lines on stderr, unless the
    ``mrae`` logger has a handler already (this one, or the program's own)."""
    root = logging.getLogger("mrae")
    if root.handlers:
        return
    root.addHandler(PlainStderrHandler())
    root.setLevel(logging.INFO)
    root.propagate = False  # not twice when the program also logs to the root logger


class MetricsLog:
    """Append-only JSON lines plus TensorBoard scalars for one run folder.

    Args:
        run_dir: the run folder; writes ``run_dir/metrics.jsonl`` and ``run_dir/tb/``.
        resume_step: when resuming, the step of the checkpoint: later records are dropped.
        tensorboard: also write TensorBoard events.
    """

    def __init__(self, run_dir: str | os.PathLike[str], resume_step: int | None = None,
                 tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            write_text_atomic(self.path, "")  # a new file: never truncated through a link
        else:
            self._truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=purge)

    def log_train(
        self, step: int, losses: Mapping[str, float], lr: float, timing: Mapping[str, float] | None = None
    ) -> None:
        """One training record: ``losses`` has ``loss`` (the total) and the parts; ``timing``
        adds e.g. ``step_seconds``, ``images_per_s`` and ``train_seconds`` (training time so far,
        without evaluations and checkpoints)."""
        self._append({"step": step, **{k: float(v) for k, v in losses.items()}, "lr": lr,
                      **{k: round(float(v), 4) for k, v in (timing or {}).items()}})
        if self.writer is not None:
            for name, value in losses.items():
                self.writer.add_scalar(f"train/{name}", value, step)
            self.writer.add_scalar("train/lr", lr, step)

    def log_eval(self, step: int, metrics: Mapping[str, float], train_seconds: float | None = None,
                 eval_seconds: float | None = None) -> None:
        """One evaluation record (NaN, a metric without ground truth, is written as null);
        ``train_seconds``: the training time (without evaluations) the model had;
        ``eval_seconds``: the run's evaluation time so far, this evaluation included."""
        clean = {k: None if _nan(v) else float(v) for k, v in metrics.items()}
        record = {"step": step, "eval": clean}
        if train_seconds is not None:
            record["train_seconds"] = round(float(train_seconds), 2)
        if eval_seconds is not None:
            record["eval_seconds"] = round(float(eval_seconds), 2)
        self._append(record)
        if self.writer is not None:
            for name, value in metrics.items():
                if not _nan(value):
                    self.writer.add_scalar(f"eval/{name}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            self.writer.flush()

    def _truncate_after(self, step: int) -> None:
        """Keep the records up to ``step`` (atomically); drop a half-written last line, saying so."""
        if not self.path.is_file():
            return
        records, torn = _parse(self.path)
        if torn is not None:
            logger.warning(f"resume: dropped the half-written last line {torn} of {self.path} (the "
                           "run was stopped while writing it)")
        kept = [record for record in records if record["step"] <= step]
        write_text_atomic(self.path, "".join(json.dumps(record) + "\n" for record in kept))


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` in order (a half-written last line, from a run
    being written or killed mid-line, left out).

    Raises:
        DataError: a line before the last is not a record.
    """
    return _parse(Path(run_dir) / "metrics.jsonl")[0]


def _parse(path: Path) -> tuple[list[dict[str, Any]], int | None]:
    """The records of a metrics file and the number of its half-written last line (None if none)."""
    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if line.strip()]
    records: list[dict[str, Any]] = []
    for i, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            if i == len(lines) - 1:
                return records, number
            raise DataError(f"{path}: line {number} is not a metrics record ({line[:60]!r}); "
                            "remove or fix that line")
        records.append(record)
    return records, None


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
