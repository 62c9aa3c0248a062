"""How long a study has left, from the time its finished runs took (printed after each run).

A study of many runs trains for hours to days, over several sittings; as it starts and after each
finished run the runner says about how long the rest takes. A run's time is its own training and
evaluation clocks, which its log sums over resumes (:func:`run_seconds`), so a run resumed in a
later sitting counts whole. Each run still to train (or training) is given the mean time of its
row's finished runs, or else the mean over the finished runs of its host (``Row.detector``),
each divided by its ``schedule_scale``, times its own; runs of a host with no finished run are
counted apart, never guessed. With ``workers`` runs at a time the sum is divided by ``workers``
(but never below the longest run).
The machine's speed and load change (the runs of one session can differ 3x on a shared machine,
and machines of one kind 2.5x), so a run that recorded its machine's speed (float32 matmul GFLOP/s
at its threads, measured as it finished: :func:`run_gflops`) counts at ``seconds * its GFLOP/s /
the GFLOP/s now`` where the speed now is known; a run without counts at its own time. The figure
is a rough guide, rounded.
"""

from __future__ import annotations

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


class Pace:
    """The times of the study's finished runs, by row; ``gflops_now``: the machine's float32
    matmul GFLOP/s now at a run's threads (None: every run counts at its own time)."""

    def __init__(self, gflops_now: float | None = None) -> None:
        self.gflops_now = gflops_now if gflops_now and gflops_now > 0 else None
        self.scaled = False  # some run's time was scaled to the speed now
        self._seconds: dict[str, list[float]] = {}
        self._hosts: dict[str, list[float]] = {}

    def add(self, row: Row, seconds: float, gflops: float | None = None) -> None:
        """A finished run of `row` took `seconds` (:func:`run_seconds`) on a machine of `gflops`
        (:func:`run_gflops`): counted at the speed now where both speeds are known."""
        if gflops and self.gflops_now:
            self.scaled = True
        seconds = at_speed_now(seconds, gflops, self.gflops_now)
        self._seconds.setdefault(row.name, []).append(seconds)
        self._hosts.setdefault(row.detector, []).append(seconds / row.schedule_scale)

    def estimate(self, row: Row) -> float | None:
        """The expected wall seconds of one run of `row`; None when nothing of its host is timed."""
        if row.name in self._seconds:
            return mean(self._seconds[row.name])
        if row.detector in self._hosts:
            return mean(self._hosts[row.detector]) * row.schedule_scale
        return None

    def left(self, rows: list[Row], workers: int = 1) -> str | None:
        """``about 5.2 h left for 12 runs at 2 at a time`` (and the runs not yet timed), for runs of
        `rows` still to train; None when there are none."""
        if not rows:
            return None
        estimates = [self.estimate(row) for row in rows]
        timed = [e for e in estimates if e is not None]
        untimed = len(estimates) - len(timed)
        parts = []
        if timed:
            # `workers` at a time, and never less than the longest run alone
            hours = max(sum(timed) / max(1, workers), max(timed)) / 3600
            amount = f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"
            at = f", {workers} at a time" if workers > 1 else ""
            parts.append(f"about {amount} left for {len(timed)} run{'s' if len(timed) != 1 else ''}{at}")
        if untimed:
            parts.append(f"{untimed} run{'s' if untimed != 1 else ''} of a host not timed yet")
        scaled = (f", scaled to this machine's {self.gflops_now:.0f} GFLOP/s a run now"
                  if self.scaled else "")
        return "; ".join(parts) + f" (at the pace of the study's finished runs{scaled})"
