"""The study's ledger of finished runs: one small JSON per (row, seed), committed with the results.

A study whose runs take longer than one sitting, on machines whose run folders do not outlive it,
keeps what each finished run measured in a folder the study file names (``records``, e.g.
``docs/results_runs``): ``<row folder>/seed<k>.json`` with the run's config, its final metrics and
its evaluation curve. Checkpoints stay in the run folder (they are never committed). A clean clone
then resumes the study where the records end and reports every recorded run as if its folder were
there. A record counts only while its config equals the run's config as the study builds it now
(budget, row settings, seed; a setting added to the code since, at its default, changes nothing):
a record of another budget is ignored, never mixed in.

A run is finished when its folder has ``final_metrics.json`` or the ledger records it
(:func:`finished`, :func:`final_metrics`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrae.apps.study.spec import Job, Row, Study, row_config, run_dir
from mrae.errors import ConfigError
from mrae.files import write_json_atomic

RECORD_FORMAT = 1
# While `remembered(study)` is active: the study, and what read_record found for each of its
# record files, by path, inode, size and modification time (a record written since, atomically
# through a new file, is read again).
_memo: tuple[Study, dict[tuple, dict[str, Any] | None]] | None = None


@contextlib.contextmanager
def remembered(study: Study) -> Iterator[None]:
    """Within this block :func:`read_record` reads and checks each record file of ``study`` once
    (again only after the file changed): the runner asks for the same records on every pass over
    its pending runs, and checking one builds the run's config from its YAML files. The study's
    files must not change within the block (the runner's case: the study was loaded before)."""
    global _memo
    outer, _memo = _memo, (study, {})
    try:
        yield
    finally:
        _memo = outer


def eval_curve(folder: Path, metric: str = "AP") -> list[list[float]]:
    """[step, metric] of every periodic evaluation logged in a run's metrics.jsonl."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "eval" in record and record["eval"].get(metric) is not None:
            curve.append([int(record["step"]), float(record["eval"][metric])])
    return curve


def record_path(study: Study, row: Row, seed: int, quick: bool = False) -> Path | None:
    """Where the record of (row, seed) goes; None for a study without ``records`` and for a
    ``--quick`` study (a test of the pipeline, never recorded)."""
    if study.records is None or quick:
        return None
    return study.records / row.slug / f"seed{seed}.json"


def _config(study: Study, row: Row, seed: int) -> dict[str, Any]:
    from mrae.engine.config import to_dict

    return to_dict(row_config(study, row, seed))


def write_record(study: Study, row: Row, seed: int, final: dict[str, Any],
                 quick: bool = False) -> Path | None:
    """Record a finished run (its final metrics, or its divergence) and its evaluation curve."""
    path = record_path(study, row, seed, quick)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {
        "format": RECORD_FORMAT,
        "row": row.name,
        "seed": seed,
        "config": _config(study, row, seed),
        "final": final,
        "curve": eval_curve(run_dir(study, row, seed)),
    })
    return path


def read_record(study: Study, row: Row, seed: int, quick: bool = False) -> dict[str, Any] | None:
    """The record of (row, seed) if there is one that belongs to this study's run as it is built
    now (same config); None otherwise (no record, unreadable, or of another budget or row)."""
    path = record_path(study, row, seed, quick)
    if path is None or not path.is_file():
        return None
    if _memo is None or _memo[0] is not study:
        return _read_record(study, row, seed, path)
    try:
        stat = path.stat()
    except OSError:
        return None
    key, memo = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, row, seed), _memo[1]
    if key not in memo:
        memo[key] = _read_record(study, row, seed, path)
    return memo[key]


def _read_record(study: Study, row: Row, seed: int, path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    if not isinstance(record.get("config"), dict) or _stored(record["config"]) != _stored(_config(study, row, seed)):
        return None
    return record


def _stored(config: dict[str, Any]) -> Any:
    """A config as it compares across versions of the code: read through the schema (keys added
    since the record was written take their defaults, retired keys are dropped), as JSON values;
    None where the schema refuses it."""
    from mrae.engine.config import config_from_dict, to_dict
    from mrae.errors import MraeError

    try:
        return json.loads(json.dumps(to_dict(config_from_dict(config, source="study record"))))
    except (MraeError, ValueError, TypeError):
        return None


def backfill(study: Study, jobs: list[Job], quick: bool = False) -> int:
    """Write the missing records of finished runs (a run folder with ``final_metrics.json``), and
    those of runs whose time :func:`upgrade_clocks` corrected; returns how many were written."""
    written = 0
    for row, seed in jobs:
        done = run_dir(study, row, seed) / "final_metrics.json"
        if not done.is_file():
            continue
        upgraded = upgrade_clocks(done) | upgrade_stalled(done)
        if upgraded or read_record(study, row, seed, quick) is None:
            written += write_record(study, row, seed, read_final(done), quick) is not None
    return written


def upgrade_clocks(done: Path) -> bool:
    """Correct the time of a run finished before the study kept the run's own clocks: its
    ``train_seconds`` was the wall time of the process that finished it, which for a resumed run
    leaves out every earlier process. That value becomes ``wall_seconds`` and ``train_seconds``
    is read from the run's log (:func:`run_clocks`); returns whether
    ``done`` (``final_metrics.json``) was rewritten."""
    final = read_final(done)
    if "wall_seconds" in final or "diverged" in final or "train_seconds" not in final:
        return False
    clocks = run_clocks(done.parent)
    if "train_seconds" not in clocks:
        return False
    write_json_atomic(done, {**final, "wall_seconds": final["train_seconds"], **clocks})
    return True


def upgrade_stalled(done: Path) -> bool:
    """Add ``stalled`` (:func:`mrae.engine.stall.stalled_in_log`: the loss parts that held one
    value for 50 steps) to the final metrics of a run finished before the study kept it, when its
    log shows one; returns whether ``done`` (``final_metrics.json``) was rewritten."""
    from mrae.engine.stall import stalled_in_log

    final = read_final(done)
    if "stalled" in final or "diverged" in final:
        return False
    stalled = stalled_in_log(done.parent / "metrics.jsonl")
    if not stalled:
        return False
    write_json_atomic(done, {**final, "stalled": stalled})
    return True


def finished(study: Study, row: Row, seed: int, quick: bool = False) -> bool:
    """The run has its final metrics in its folder or a record in the study's ledger."""
    return ((run_dir(study, row, seed) / "final_metrics.json").is_file()
            or read_record(study, row, seed, quick) is not None)



def ready_to_continue(study: Study, row: Row, seed: int) -> bool:
    """The run is finished in its folder, where a run that continues it finds its weights (or
    its divergence, which the continuing run reports)."""
    return (run_dir(study, row, seed) / "final_metrics.json").is_file()



def final_metrics(study: Study, row: Row, seed: int, quick: bool = False) -> dict | None:
    """The run's final metrics from its folder, else from its record; None if it is not finished."""
    done = run_dir(study, row, seed) / "final_metrics.json"
    if done.is_file():
        return read_final(done)
    record = read_record(study, row, seed, quick)
    return None if record is None else record["final"]



def read_final(path: Path) -> dict:
    """A finished run's ``final_metrics.json``; a damaged one is a one-line ConfigError."""
    from mrae.inputs import CONFIG_LIMIT, read_text

    text = read_text(path, CONFIG_LIMIT, what="results file", error=ConfigError)
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{path}: not a readable results file ({str(error)[:80]}); delete it to "
                          "train the run again, or restore it") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: holds no results record (a JSON object); delete it to train "
                          "the run again")
    return record



def run_clocks(folder: Path) -> dict[str, float]:
    """The run's time from its own log, summed over resumes (the work a resume repeats counted
    once): ``train_seconds`` (the steps with their data wait) and ``eval_seconds`` (its
    evaluations), each from the last line of ``metrics.jsonl`` that has it; empty without a log.
    A run's ``wall_seconds`` is the time of the process that finished it only."""
    from mrae.engine.metrics_log import read_metrics

    if not (folder / "metrics.jsonl").is_file():
        return {}
    clocks: dict[str, float] = {}
    for record in read_metrics(folder):
        for key in ("train_seconds", "eval_seconds"):
            if record.get(key) is not None:
                clocks[key] = float(record[key])
    return clocks
