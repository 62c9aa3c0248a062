"""Where a study stands (``mrae study STUDY --status``): each row's seeds finished (with their AP),
diverged, part-trained (the last step its log holds, and how long ago it was logged) or not
started. It reads the run folders and the ledger and writes nothing, so it can be asked while the
study trains; whether a part-trained run is training now is for the reader to judge from how
recent its last step is (asking the run's lock could collide with a worker taking it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from mrae.apps.study.pace import Pace, Speed, run_gflops, run_seconds
from mrae.apps.study.records import BadRecord, final_metrics, remembered
from mrae.apps.study.spec import Row, Study, row_config, run_dir
from mrae.tables import markdown_table

FINISHED, DIVERGED, PARTIAL, NOT_STARTED = "finished", "diverged", "part-trained", "not started"
BAD = "bad record"  # its final metrics cannot be read as a result (records.BadRecord): not counted


@dataclass(frozen=True)
class RunState:
    """One (row, seed): its state, and what is known of it (AP x100 and the run's time in seconds:
    its own training and evaluation clocks summed over resumes, :func:`run_seconds`, with its
    machine's float32 matmul GFLOP/s at its ``threads`` where recorded; or the last logged step of
    ``steps`` and the seconds since it was logged; or, for a bad record, the ``problem``)."""

    seed: int
    state: str
    ap: float | None = None
    seconds: float | None = None
    gflops: float | None = None
    threads: int | None = None
    step: int | None = None
    steps: int | None = None
    age_s: float | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.state == FINISHED:
            took = f", {_duration(self.seconds)}" if self.seconds else ""
            return f"{self.seed}: {self.ap:.1f}{took}" if self.ap is not None else f"{self.seed}{took}"
        if self.state == PARTIAL:
            return f"{self.seed}: step {self.step}/{self.steps}, logged {_ago(self.age_s)}"
        return str(self.seed)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 6000 else f"{seconds / 3600:.1f} h"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "at an unknown time"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{_duration(seconds)} ago"


def last_logged_step(folder: Path) -> tuple[int, float] | None:
    """The last training step in ``folder/metrics.jsonl`` and the file's modification time (epoch
    seconds); None without a logged step. A torn last line (a killed write) is skipped."""
    path = folder / "metrics.jsonl"
    try:
        lines, mtime = path.read_text().splitlines(), path.stat().st_mtime
    except OSError:
        return None
    for line in reversed(lines):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, int):
            return step, mtime
    return None


def run_state(study: Study, row: Row, seed: int, quick: bool = False, now: float | None = None) -> RunState:
    try:
        final = final_metrics(study, row, seed, quick)
    except BadRecord as error:
        return RunState(seed, BAD, problem=str(error))
    if final is not None:
        if "diverged" in final:
            return RunState(seed, DIVERGED)
        ap = final.get("AP")
        machine = final.get("machine") if isinstance(final.get("machine"), dict) else {}
        threads = machine.get("threads")
        return RunState(seed, FINISHED, ap=100 * ap if isinstance(ap, int | float) else None,
                        seconds=run_seconds(final), gflops=run_gflops(final),
                        threads=threads if isinstance(threads, int) and threads > 0 else None)
    logged = last_logged_step(run_dir(study, row, seed))
    if logged is None:
        return RunState(seed, NOT_STARTED)
    step, mtime = logged
    steps = int(row_config(study, row, seed, quick=quick).train.steps)
    return RunState(seed, PARTIAL, step=step, steps=steps,
                    age_s=max(0.0, (now if now is not None else time.time()) - mtime))


def study_status(study: Study, quick: bool = False, now: float | None = None) -> list[tuple[Row, list[RunState]]]:
    """Every row of the study file with the state of each of its seeds (one with ``quick``)."""
    with remembered(study):
        return [(row, [run_state(study, row, seed, quick, now) for seed in range(1 if quick else row.seeds)])
                for row in study.rows]


# A part-trained run whose log moved this recently is taken to be training now: a run logs every
# 10 steps (seconds to a minute on a CPU) and its longest silence is an evaluation (minutes).
TRAINING_WITHIN_S = 900.0


def training_now(status: list[tuple[Row, list[RunState]]], within_s: float = TRAINING_WITHIN_S) -> RunState | None:
    """The most recently logged part-trained run if it was logged within ``within_s`` seconds (the
    study is training now, here or on a machine sharing its folders), else None.

    Its time estimate then takes the finished runs at their own times: the CPU's speed measured
    now would be measured beside the study's own runs (about half with two runs on two cores), and
    the finished runs, timed under that same load, would be scaled by it a second time."""
    recent = [s for _, states in status for s in states
              if s.state == PARTIAL and s.age_s is not None and s.age_s <= within_s]
    return min(recent, key=lambda s: s.age_s) if recent else None


def status_pace(status: list[tuple[Row, list[RunState]]], speed: Speed | None = None) -> Pace:
    """The :class:`~mrae.apps.study.pace.Pace` of the finished runs of `status`, each scaled to
    the machine's ``speed`` now at its own threads where it recorded its speed."""
    pace = Pace(speed)
    for row, states in status:
        for s in states:
            if s.state == FINISHED and s.seconds:
                pace.add(row, s.seconds, s.gflops, s.threads)
    return pace


def hours_left(status: list[tuple[Row, list[RunState]]], speed: Speed | None = None) -> tuple[float, int]:
    """Run-hours left (each unfinished run at its row's pace, :class:`~mrae.apps.study.pace.Pace`,
    a part-trained one for its steps still to train) and the unfinished runs of hosts with no timed
    run, which are not guessed."""
    return _left_of(status_pace(status, speed), status)


def _left_of(pace: Pace, status: list[tuple[Row, list[RunState]]]) -> tuple[float, int]:
    runs = [(row, 1 - s.step / s.steps if s.state == PARTIAL and s.steps else 1.0)
            for row, states in status for s in states if s.state in (PARTIAL, NOT_STARTED)]
    timed, untimed = pace.remaining(runs)
    return sum(timed) / 3600, untimed


def status_table(status: list[tuple[Row, list[RunState]]], speed: Speed | None = None) -> str:
    """A markdown table, a line per row: seeds finished (AP x100, time), part-trained, not
    started, diverged or with a bad record (a column only where there is one; each bad record
    named in one line after the totals); then the totals and the run-hours left (:func:`hours_left`, at the
    machine's ``speed`` now where the runs recorded theirs, unless the study trains now,
    :func:`training_now`: then ``speed`` is never asked)."""
    training = training_now(status) is not None
    if training:
        speed = None
    states_shown = (FINISHED, PARTIAL, NOT_STARTED, DIVERGED)
    bad = [s for _, states in status for s in states if s.state == BAD]
    if bad:  # a column only where there is one (a bad record is neither finished nor not started)
        states_shown += (BAD,)
    lines, counts = [], dict.fromkeys(states_shown, 0)
    for row, states in status:
        cells = []
        for state in states_shown:
            chosen = [s for s in states if s.state == state]
            counts[state] += len(chosen)
            cells.append("; ".join(s.describe() for s in chosen) or "–")
        lines.append([row.name, *cells])
    table = markdown_table(["row", "finished (seed: AP, time)", "part-trained (seed: last step)",
                            "not started (seeds)", "diverged (seeds)",
                            *(["bad record (seeds)"] if bad else [])], lines)
    total = sum(counts.values())
    return (table + f"\n\n{counts[FINISHED]} of {total} runs finished, {counts[PARTIAL]} part-trained "
            f"(they resume from their last checkpoint), {counts[NOT_STARTED]} not started"
            + (f", {counts[DIVERGED]} diverged" if counts[DIVERGED] else "")
            + (f", {len(bad)} with a bad record (not counted, and no run trains over it)" if bad else "")
            + "." + _left(status, speed, training)
            + "".join(f"\n- {s.problem}" for s in bad))


def _left(status: list[tuple[Row, list[RunState]]], speed: Speed | None, training: bool = False) -> str:
    pace = status_pace(status, speed)
    hours, untimed = _left_of(pace, status)
    if not hours and not untimed:
        return ""
    parts = [f"about {hours:.1f} run-hours" if hours else "",
             f"{untimed} run{'s' if untimed != 1 else ''} of a host with no finished run, not guessed"
             if untimed else ""]
    return (" Left: " + " and ".join(p for p in parts if p) + " (each run at the mean time of its "
            "row's finished runs, else of its host's" + (", those that recorded their machine's speed scaled to "
                                                        "this machine's speed now at their threads" if pace.scaled
                                                        else " on the machines that trained them")
            + (", not scaled: the study is training now, so a speed measured beside it would count "
               "its load twice" if training else "")
            + "; divide by the runs trained at once).")
