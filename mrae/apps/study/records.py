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

Every record and ``final_metrics.json`` is checked as it is read (:func:`check_record`,
:func:`check_final`): the record's keys, its ``row`` and ``seed`` against the path it lies at, a
config the schema reads, final metrics whose ``AP`` is a finite fraction (every COCO metric a
fraction or NaN, every clock and count finite and >= 0), an evaluation curve of increasing steps
with fractions. A file that fails is a :class:`BadRecord`, named with what is wrong and what to do;
it is never counted as a result and never taken for "not started" (a run over it is refused).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrae.apps.study.spec import Job, Row, Study, row_config, run_dir
from mrae.errors import ConfigError
from mrae.files import write_json_atomic

RECORD_FORMAT = 1
RECORD_KEYS = ("format", "row", "seed", "config", "final", "curve")
RECORD_LIMIT = 16 * 1024 * 1024  # bytes: a record is a few kB
# final metrics that are fractions (COCO's AP and AR, the buckets, recall, TIDE): NaN where there
# is nothing to measure
FRACTION_PREFIXES = ("AP", "AR", "recall@", "TIDE_", "dAP_")


class BadRecord(ConfigError):
    """A study record or ``final_metrics.json`` that cannot be a result: one line naming the file,
    what is wrong with it and what to do."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        restore = ("restore it (a committed record: git checkout -- {path})" if path.name != "final_metrics.json"
                   else "restore it").format(path=path)
        super().__init__(f"{path}: {problem}; it is not counted: {restore} or move it aside to train "
                         "the run again")
# While `remembered(study)` is active: the study, and what read_record found for each of its
# record files, by path, inode, size and modification time (a record written since, atomically
# through a new file, is read again).
_memo: tuple[Study, dict[tuple, dict[str, Any] | BadRecord | None]] | None = None


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
    now (same config); None where there is none or it is of another budget; :class:`BadRecord`
    where the file is not a sound record of this row and seed (:func:`check_record`)."""
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
        try:
            memo[key] = _read_record(study, row, seed, path)
        except BadRecord as error:
            memo[key] = error
    if isinstance(memo[key], BadRecord):
        raise memo[key]
    return memo[key]


def _read_record(study: Study, row: Row, seed: int, path: Path) -> dict[str, Any] | None:
    record = load_json(path, "study record")
    check_record(record, row, seed, path)
    stored = _stored(record["config"])
    if stored is None:
        raise BadRecord(path, "its config is not one the study's config schema reads")
    if stored != _stored(_config(study, row, seed)):
        return None  # a record of another budget: ignored, never mixed in
    return record


def load_json(path: Path, what: str) -> Any:
    """The JSON value in `path` (a record or ``final_metrics.json``); :class:`BadRecord` where it
    is too large, unreadable or not JSON (nested too deep included)."""
    from mrae.errors import MraeError
    from mrae.inputs import read_text

    try:
        return json.loads(read_text(path, RECORD_LIMIT, what=what, error=ConfigError))
    except MraeError as error:
        raise BadRecord(path, str(error).removeprefix(f"{path}: ")) from None
    except (ValueError, RecursionError) as error:
        raise BadRecord(path, f"not readable JSON ({str(error)[:80]})") from None


def check_record(record: Any, row: Row, seed: int, path: Path) -> None:
    """A record as :func:`write_record` writes it, of `row` and `seed` (the path it lies at);
    :class:`BadRecord` naming the first thing wrong."""
    if not isinstance(record, dict):
        raise BadRecord(path, f"holds {type(record).__name__}, not a study record (a JSON object)")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise BadRecord(path, f"has no {', '.join(missing)} (a record has {', '.join(RECORD_KEYS)})")
    if record["format"] != RECORD_FORMAT:
        raise BadRecord(path, f"is of format {record['format']!r}; this code reads format {RECORD_FORMAT}")
    if record["row"] != row.name:
        raise BadRecord(path, f"records row {record['row']!r}, but lies where row {row.name!r}'s record goes")
    if isinstance(record["seed"], bool) or record["seed"] != seed:
        raise BadRecord(path, f"records seed {record['seed']!r}, but lies where seed {seed}'s record goes")
    if not isinstance(record["config"], dict):
        raise BadRecord(path, "its config is not a mapping")
    check_final(record["final"], path, "its final metrics")
    check_curve(record["curve"], path)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_final(final: Any, path: Path, what: str = "the final metrics") -> None:
    """Final metrics a result can rest on: a mapping with a finite ``AP`` in [0, 1] (or a
    ``diverged`` message), every COCO fraction (:data:`FRACTION_PREFIXES`) in [0, 1] or NaN, every
    other number finite and >= 0; :class:`BadRecord` naming the first value that is not."""
    if not isinstance(final, dict):
        raise BadRecord(path, f"{what} are not a mapping")
    if "diverged" in final:
        if not isinstance(final["diverged"], str):
            raise BadRecord(path, f"{what}: diverged must be the message, got {final['diverged']!r}")
    elif not _number(final.get("AP")) or not 0 <= final["AP"] <= 1:
        raise BadRecord(path, f"{what}: AP must be a fraction in [0, 1], got {final.get('AP')!r}")
    for key, value in final.items():
        if isinstance(value, bool) or not _number(value):
            continue
        if key.startswith(FRACTION_PREFIXES):
            if not (math.isnan(value) or 0 <= value <= 1):
                raise BadRecord(path, f"{what}: {key} must be a fraction in [0, 1] (or NaN), got {value!r}")
        elif not (math.isfinite(value) and value >= 0):
            raise BadRecord(path, f"{what}: {key} must be finite and >= 0, got {value!r}")
    attention = final.get("attention")
    if attention is not None and not (isinstance(attention, list) and all(
            _number(w) and 0 <= w <= 1 for w in attention)):
        raise BadRecord(path, f"{what}: attention must be a list of level weights in [0, 1]")


def check_curve(curve: Any, path: Path) -> None:
    """An evaluation curve: ``[step, AP]`` pairs, steps increasing integers >= 0, AP a finite
    fraction; :class:`BadRecord` otherwise."""
    if not isinstance(curve, list):
        raise BadRecord(path, f"its curve is {type(curve).__name__}, not a list of [step, AP]")
    last = -1
    for point in curve:
        if not (isinstance(point, list) and len(point) == 2 and _number(point[0])
                and float(point[0]).is_integer() and _number(point[1])
                and math.isfinite(point[1]) and 0 <= point[1] <= 1 and point[0] > last):
            raise BadRecord(path, f"its curve holds {str(point)[:40]}, not [step, AP] with steps "
                            "increasing and AP a fraction in [0, 1]")
        last = point[0]


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
    """Write the missing (or damaged) records of finished runs (a run folder with a sound
    ``final_metrics.json``), and those of runs whose time :func:`upgrade_clocks` corrected;
    returns how many were written."""
    written = 0
    for row, seed in jobs:
        done = run_dir(study, row, seed) / "final_metrics.json"
        if not done.is_file():
            continue
        try:
            upgraded = upgrade_clocks(done) | upgrade_stalled(done)
            final = read_final(done)
        except BadRecord:
            continue  # not a result: named by bad_records, never recorded
        try:
            recorded = read_record(study, row, seed, quick) is not None
        except BadRecord:
            recorded = False  # the run folder's result replaces a damaged record
        if upgraded or not recorded:
            written += write_record(study, row, seed, final, quick) is not None
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
    """A finished run's ``final_metrics.json``, checked (:func:`check_final`); a damaged one is a
    :class:`BadRecord` (one line)."""
    final = load_json(path, "results file")
    check_final(final, path)
    return final


def bad_records(study: Study, jobs: list[Job], quick: bool = False) -> list[tuple[Row, int, BadRecord]]:
    """The runs of `jobs` whose final metrics (in the run folder, else in the ledger) cannot be
    read as a result: (row, seed, the :class:`BadRecord`)."""
    bad = []
    for row, seed in jobs:
        try:
            final_metrics(study, row, seed, quick)
        except BadRecord as error:
            bad.append((row, seed, error))
    return bad


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
