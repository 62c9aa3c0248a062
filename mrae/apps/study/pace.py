"""How long a study has left, from the time its finished runs took: the one estimator that the
runner (as it starts and after each run) and ``mrae study --status`` both use.

A study of many runs trains for hours to days, over several sittings. A run's time is its own
training and evaluation clocks, which its log sums over resumes (:func:`run_seconds`), so a run
resumed in a later sitting counts whole. Each run still to train (or training) is given the mean
time of its row's finished runs, or else the mean over the finished runs of its host
(``Row.detector``), each divided by its ``schedule_scale``, times its own; a part-trained run
counts for the share of its steps still to train; runs of a host with no finished run are counted
apart, never guessed (:meth:`Pace.remaining`). With ``workers`` runs at a time the sum is divided
by ``workers`` (but never below the longest run: :meth:`Pace.left`).
The machine's speed and load change (the runs of one session can differ 3x on a shared machine,
and machines of one kind 2.5x), so a run that recorded its machine's speed (float32 matmul GFLOP/s
at its threads, measured as it finished: :func:`run_gflops`) counts at ``seconds * its GFLOP/s /
the GFLOP/s now`` where the speed now is known (at the threads the runs left will train with, or
else at the run's own); a run without counts at its own time. The figure is a rough guide, rounded.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import mean

from mrae.apps.study.spec import Row


def run_seconds(final: dict) -> float | None:
    """A finished run's time in seconds: its training and evaluation clocks, which the run's log
    sums over resumes (``wall_seconds`` is the finishing process's alone), else its
    ``wall_seconds``; None for a run with neither (a diverged run's record may have none)."""
    train, evaluation = final.get("train_seconds"), final.get("eval_seconds")
    if isinstance(train, int | float):
        return float(train) + (float(evaluation) if isinstance(evaluation, int | float) else 0.0)
    wall = final.get("wall_seconds")
    return float(wall) if isinstance(wall, int | float) else None


def run_gflops(final: dict) -> float | None:
    """The float32 matmul GFLOP/s of the machine a run finished on, at the run's threads
    (``final["machine"]["gflops"]``); None where its record has none."""
    machine = final.get("machine")
    gflops = machine.get("gflops") if isinstance(machine, dict) else None
    return float(gflops) if isinstance(gflops, int | float) and gflops > 0 else None


def at_speed_now(seconds: float, gflops: float | None, gflops_now: float | None) -> float:
    """A run's `seconds` on a machine of `gflops` as the time it would take at `gflops_now`
    (``seconds * gflops / gflops_now``); its own time where either speed is unknown."""
    return seconds * gflops / gflops_now if gflops and gflops_now else seconds


# the machine's float32 matmul GFLOP/s now at a number of threads (mrae.engine.eta.cpu_speed_now)
Speed = Callable[[int], float]


class Pace:
    """The times of the study's finished runs, by row and by host. ``speed``: the machine's
    float32 matmul GFLOP/s now at a number of threads (None: every run counts at its own time);
    ``threads``: the threads each run still to train will have (None: a finished run is scaled
    at its own threads)."""

    def __init__(self, speed: Speed | None = None, threads: int | None = None) -> None:
        self.speed, self.threads = speed, threads
        self.scaled = False  # some run's time was scaled to the speed now
        self._now: dict[int, float | None] = {}  # the speed now, measured once per thread count
        self._seconds: dict[str, list[float]] = {}
        self._hosts: dict[str, list[float]] = {}

    def speed_now(self, threads: int | None) -> float | None:
        """GFLOP/s now at ``self.threads`` (else `threads`); None where unknown."""
        threads = self.threads or threads
        if self.speed is None or not threads:
            return None
        if threads not in self._now:
            gflops = self.speed(threads)
            self._now[threads] = gflops if gflops and gflops > 0 else None
        return self._now[threads]

    def add(self, row: Row, seconds: float, gflops: float | None = None,
            threads: int | None = None) -> None:
        """A finished run of `row` took `seconds` (:func:`run_seconds`) on a machine of `gflops`
        at `threads` (:func:`run_gflops`): counted at the speed now where both speeds are known."""
        now = self.speed_now(threads) if gflops else None
        if gflops and now:
            self.scaled = True
        seconds = at_speed_now(seconds, gflops, now)
        self._seconds.setdefault(row.name, []).append(seconds)
        self._hosts.setdefault(row.detector, []).append(seconds / row.schedule_scale)

    def estimate(self, row: Row) -> float | None:
        """The expected seconds of one run of `row`; None when nothing of its host is timed."""
        if row.name in self._seconds:
            return mean(self._seconds[row.name])
        if row.detector in self._hosts:
            return mean(self._hosts[row.detector]) * row.schedule_scale
        return None

    def remaining(self, runs: list[tuple[Row, float]]) -> tuple[list[float], int]:
        """The expected seconds of each run of `runs` (a row and the share of its steps still to
        train: 1 for a run not started) whose host is timed, and the count of those whose host
        is not."""
        estimates = [(self.estimate(row), share) for row, share in runs]
        return [e * share for e, share in estimates if e is not None], sum(e is None for e, _ in estimates)

    def left(self, rows: list[Row], workers: int = 1) -> str | None:
        """``about 5.2 h left for 12 runs at 2 at a time`` (and the runs not yet timed), for runs of
        `rows` still to train; None when there are none."""
        if not rows:
            return None
        timed, untimed = self.remaining([(row, 1.0) for row in rows])
        parts = []
        if timed:
            # `workers` at a time, and never less than the longest run alone
            hours = max(sum(timed) / max(1, workers), max(timed)) / 3600
            amount = f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"
            at = f", {workers} at a time" if workers > 1 else ""
            parts.append(f"about {amount} left for {len(timed)} run{'s' if len(timed) != 1 else ''}{at}")
        if untimed:
            parts.append(f"{untimed} run{'s' if untimed != 1 else ''} of a host not timed yet")
        scaled = ""
        if self.scaled:
            scaled = (f", scaled to this machine's {self.speed_now(None):.0f} GFLOP/s a run now"
                      if self.threads else ", scaled to this machine's speed now at their threads")
        return "; ".join(parts) + f" (at the pace of the study's finished runs{scaled})"
