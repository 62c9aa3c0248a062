"""The expected time of a run, said before the long part starts: from a short measured warm-up.

A recipe's minutes depend on the machine and on what else runs on it, so `mrae pretrain` and
`mrae train` measure instead of promising: they time their first steps (the warm-up: the first
:data:`SKIP` steps are left out, they allocate memory and fill caches), multiply by the steps left
and say it in one line, beside what this machine does right now: the GFLOP/s of a float32 matmul
at the run's threads (:func:`matmul_gflops`) and the load average. The docs give the recipes'
work in GFLOP at that measured speed (``seconds x GFLOP/s``), so that a user's own
``GFLOP/s`` gives their time before they run anything.

This module is the timing maths alone; `mrae train` says the line through its hook
:class:`mrae.engine.hooks.ExpectedTime`, `mrae pretrain` (:mod:`mrae.engine.pretrain`) directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

#: Steps left out at the start of the warm-up (allocation, caches), then the steps timed.
SKIP = 1
MEASURED = 4


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of an ``n`` x ``n`` float32 matmul on the CPU at torch's current threads, now: the
    median of ``repeats`` (about 0.1 s on a 100 GFLOP/s core). The median, not the best: on
    shared cores it is the speed the run gets, other work included."""
    import statistics

    import torch

    # its own generator: the run's random numbers (RPN and RoI sampling) stay those of a run that
    # never measured, so a resumed run repeats an uninterrupted one exactly
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator) for _ in range(2))
    torch.mm(a, b)  # the first call allocates
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(seconds) / 1e9


def matmul_gflops_at(threads: int) -> float:
    """:func:`matmul_gflops` at ``threads`` torch threads (the caller's setting is restored)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        return matmul_gflops()
    finally:
        torch.set_num_threads(before)


def cpu_speed_now() -> Callable[[int], float] | None:
    """The CPU's float32 matmul GFLOP/s now as a function of the thread count
    (:func:`matmul_gflops_at`, measured once per count, about 0.1 s each), the speed the study's
    time estimates scale finished runs to; None on a GPU machine (its runs' times are their own)."""
    import functools

    import torch

    return None if torch.cuda.is_available() else functools.lru_cache(maxsize=None)(matmul_gflops_at)


def machine_now() -> str:
    """``"62 GFLOP/s float32 matmul at 1 thread, load average 1.4"``: the speed the estimate
    was measured at."""
    import torch

    threads = torch.get_num_threads()
    text = f"{matmul_gflops():.0f} GFLOP/s float32 matmul at {threads} thread{'s' * (threads != 1)}"
    try:
        text += f", load average {os.getloadavg()[0]:.1f}"
    except OSError:  # not on every platform
        pass
    return text


def duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2.3 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def expected_line(what: str, step_seconds: float, steps_left: int, first: int, last: int,
                  extra: str = "") -> str:
    """One line: ``"<what>: expected about 12 min for the 995 steps left (0.72 s/step, measured
    over steps 2-5; <extra>); this machine now: <machine_now()>"``."""
    total = step_seconds * steps_left
    note = f"; {extra}" if extra else ""
    steps = f"{steps_left:,} step{'s' * (steps_left != 1)}"
    return (f"{what}: expected about {duration(total)} for the {steps} left "
            f"({step_seconds:.2f} s/step, measured over steps {first}-{last}{note}); this machine "
            f"now: {machine_now()}")


class WarmupTimer:
    """Times steps ``SKIP + 1 .. SKIP + MEASURED`` of a loop; :meth:`ready` once they are done."""

    def __init__(self, start_step: int = 0) -> None:
        self.start_step = start_step  # steps already done before this call (a resumed run)
        self.seconds: list[float] = []
        self._began: float | None = None
        self._seen = 0

    def begin(self) -> None:
        self._began = time.perf_counter()

    def end(self) -> bool:
        """Count one step; True exactly once, when the warm-up has been measured."""
        self._seen += 1
        if self._began is not None and SKIP < self._seen <= SKIP + MEASURED:
            self.seconds.append(time.perf_counter() - self._began)
        return self._seen == SKIP + MEASURED

    @property
    def step_seconds(self) -> float:
        return sum(self.seconds) / max(1, len(self.seconds))

    @property
    def measured_steps(self) -> tuple[int, int]:
        """The first and last step measured, counted over the whole run (1-based)."""
        return self.start_step + SKIP + 1, self.start_step + SKIP + MEASURED
