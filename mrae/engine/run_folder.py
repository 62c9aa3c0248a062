"""A run folder: ``config.yaml``, ``metrics.jsonl``, ``tb/`` and ``checkpoints/`` (``last.pth``,
``step_<7-digit step>.pth``, ``best.pth``); one writer at a time (:mod:`mrae.engine.runlock`).

What may start in a folder (:func:`check_start`), the checkpoint a resume starts from
(:func:`resume_state`: ``last.pth``, or the newest intact ``step_*.pth`` when it is damaged), the
saved config (:func:`write_config`), the removal of a folder whose setup failed
(:func:`remove_unused`), and the checkpoint files a run keeps: ``last.pth`` linked atomically to
``step_*.pth`` and ``best.pth`` (:func:`link_or_copy`), the newest ``train.keep_last`` step files
(:func:`step_checkpoints`, :func:`prune_step_checkpoints`). A checkpoint file itself is
:mod:`mrae.engine.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from os import PathLike
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mrae.engine.checkpoint import CheckpointDamaged, load_checkpoint
from mrae.engine.runlock import LOCK_NAME
from mrae.errors import ConfigError
from mrae.files import temp_path, write_text_atomic

logger = logging.getLogger(__name__)

_STEP_FILE = re.compile(r"step_(\d+)\.pth")
#: Logs that whoever runs the training keeps appending to in a run folder (the study's worker
#: output): a marked run folder holding one is still the run's own (:func:`mrae.ownership.claim_folder`).
KEPT_LOGS = ("study.log",)


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.pth"


def check_start(run_dir: Path, resume: bool, init_from: str | Path | None) -> None:
    """Refuse a resume without a run, a new run over an existing one, and resume with init_from."""
    last = last_checkpoint(run_dir)
    if resume and init_from is not None:
        raise ConfigError("--resume and --init-from exclude each other: a resumed run has its own weights")
    if resume and not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist; there is no run to resume in {run_dir}")
    if not resume and last.is_file():
        raise ConfigError(
            f"{run_dir} already holds a run ({last}); pass --resume to continue it "
            "or --out RUN_DIR to start a new one"
        )


def resume_state(run_dir: Path, is_main: bool) -> tuple[dict[str, Any], Path]:
    """The checkpoint to resume from and its path: ``last.pth``, or when it is damaged the newest
    intact ``step_*.pth``, which then replaces ``last.pth`` (said in one line, by rank 0, which
    also makes the replacement).

    Raises:
        ConfigError: ``last.pth`` is damaged and no step checkpoint is intact.
    """
    last = last_checkpoint(run_dir)
    try:
        return load_checkpoint(last), last
    except CheckpointDamaged:
        pass
    for candidate in reversed(step_checkpoints(last.parent)):
        try:
            state = load_checkpoint(candidate)
        except CheckpointDamaged:
            continue
        if is_main:
            link_or_copy(candidate, last)  # eval and the study read last.pth
            logger.warning(f"resume: {last} is damaged; resuming from {candidate} (step "
                           f"{int(state['step'])}), the newest intact step checkpoint, which replaces it")
        return state, candidate
    raise ConfigError(
        f"--resume: {last} is damaged and no step_*.pth in {last.parent} is intact; "
        "there is nothing to resume from: start the run again in a new --out folder"
    )


def write_config(run_dir: Path, cfg: DictConfig, resume: bool) -> None:
    """Save the resolved config as ``config.yaml`` (a resume whose config differs says so)."""
    from mrae.engine.config import to_yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    text = to_yaml(cfg)
    if resume and path.is_file() and path.read_text() != text:
        logger.warning(f"resume: the config differs from the run's saved {path}; saving the new one")
    write_text_atomic(path, text)


def run_files(run_dir: Path) -> list[Path]:
    """The files a run writes that are there now: ``config.yaml``, ``metrics.jsonl``, TensorBoard's
    ``tb/events.out.tfevents.*`` and the checkpoints (``last.pth``, ``best.pth``, ``step_*.pth``);
    what the run folder's ownership marker lists (:func:`mrae.ownership.record_whole`)."""
    found = [run_dir / name for name in ("config.yaml", "metrics.jsonl")]
    tb, checkpoints = run_dir / "tb", last_checkpoint(run_dir).parent
    if tb.is_dir():
        found += [p for p in tb.iterdir() if p.name.startswith("events.out.tfevents.")]
    found += [checkpoints / name for name in ("last.pth", "best.pth")]
    found += step_checkpoints(checkpoints)
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def remove_unused(run_dir: Path) -> None:
    """Remove a run folder this call created, if it holds nothing but the lock and empty folders."""
    from mrae.ownership import MARKER

    (run_dir / LOCK_NAME).unlink(missing_ok=True)
    (run_dir / MARKER).unlink(missing_ok=True)
    for folder in sorted((p for p in run_dir.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only empty folders go
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def link_or_copy(source: str | PathLike[str], target: str | PathLike[str]) -> None:
    """Make ``target`` hold ``source``'s bytes, atomically (a hard link where possible).

    A hard link costs no disk or time; later atomic replacements of ``source`` (a new inode) leave
    ``target`` unchanged.
    """
    source, target = Path(source), Path(target)
    tmp = temp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            import shutil

            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def step_checkpoints(folder: str | PathLike[str]) -> list[Path]:
    """The ``step_<7-digit step>.pth`` files of a checkpoints folder, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def prune_step_checkpoints(folder: str | PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` step checkpoints; return the deleted paths."""
    files = step_checkpoints(folder)
    doomed = files[: max(len(files) - keep_last, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
