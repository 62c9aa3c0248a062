"""A run's logs: ``metrics.jsonl`` (one JSON object per line) and TensorBoard events in ``tb/``.

Training lines are ``{"step": s, "loss": mean total loss, "lr": lr, "loss_<part>": ...}`` and
evaluation lines ``{"step": s, "eval": {metric: value}}``. A resumed run first drops the lines
written after the step it resumes from, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
            self.path.write_text("")
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

    def log_eval(self, step: int, metrics: Mapping[str, float], train_seconds: float | None = None) -> None:
        """One evaluation record (NaN, a metric without ground truth, is written as null);
        ``train_seconds``: the training time (without evaluations) the model had."""
        clean = {k: None if _nan(v) else float(v) for k, v in metrics.items()}
        record = {"step": step, "eval": clean}
        if train_seconds is not None:
            record["train_seconds"] = round(float(train_seconds), 2)
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
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` in order."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
