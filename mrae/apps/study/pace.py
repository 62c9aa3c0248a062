"""How long a study has left, from the runs this process has timed (printed after each run).

A study of many runs trains for hours to days; after each finished run the runner says about how
long the rest takes. Each run still to train (or training) is given the mean wall time of the runs
of its row that this process trained whole (not resumed, not diverged), or else the mean over this process's runs of its host
(``Row.detector``) times its ``schedule_scale``; runs of a host with no timed run yet are counted
apart, never guessed. With ``workers`` runs at a time the sum is divided by ``workers``. The
machine's speed and load change (the runs of one session can differ 3x on a shared machine), so
the figure is a rough guide, rounded.
"""

from __future__ import annotations

from statistics import mean

from mrae.apps.study.spec import Row


class Pace:
    """The wall times of the runs this process finished, by row."""

    def __init__(self) -> None:
        self._seconds: dict[str, list[float]] = {}
        self._hosts: dict[str, list[float]] = {}

    def add(self, row: Row, seconds: float) -> None:
        """A finished run of `row` took `seconds` of wall time here."""
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
            hours = sum(timed) / max(1, workers) / 3600
            amount = f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"
            at = f", {workers} at a time" if workers > 1 else ""
            parts.append(f"about {amount} left for {len(timed)} run{'s' if len(timed) != 1 else ''}{at}")
        if untimed:
            parts.append(f"{untimed} run{'s' if untimed != 1 else ''} of a host not timed yet")
        return "; ".join(parts) + " (at this process's pace so far)"
