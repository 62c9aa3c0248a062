"""Work spread over spawned worker processes, in order, that fails instead of hanging.

``multiprocessing.Pool`` replaces a worker that dies and waits for its task for ever; a
``ProcessPoolExecutor`` reports the death. A worker dies, for example, when the system kills it
for memory, or when the script that called mrae has no ``if __name__ == "__main__":`` guard (each
spawned worker imports the script again; :func:`mrae.cli.main` refuses to run there).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import TypeVar

from mrae.errors import MraeError

T = TypeVar("T")
R = TypeVar("R")

WORKER_DIED = ("a worker process of {what} stopped without a result (killed for memory, or the "
               "script that calls mrae lacks `if __name__ == \"__main__\":`); run it again, with "
               "fewer workers if memory is short")


def map_in_processes(function: Callable[[T], R], jobs: Iterable[T], workers: int, what: str,
                     chunksize: int = 8) -> Iterator[R]:
    """``function(job)`` for every job, in the jobs' order, in ``workers`` spawned processes (spawn:
    safe when the caller has started torch's threads). ``function`` must be importable (module
    level). Raises :class:`MraeError` (one line naming ``what``) if a worker dies."""
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            yield from pool.map(function, jobs, chunksize=chunksize)
        except futures.process.BrokenProcessPool:
            raise MraeError(WORKER_DIED.format(what=what)) from None


def die_with_parent() -> None:
    """In a worker: ask Linux to send SIGTERM when the process that started it dies (a killed
    ``mrae study`` takes its workers with it instead of leaving them training as orphans).
    Elsewhere: nothing."""
    import ctypes
    import signal

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_setup(start_method: str) -> None:
    """In a study worker, as it starts: die with the study (:func:`die_with_parent`) and start
    its own child processes (the DataLoader's workers) by ``start_method``, the study process's, as
    a plain ``mrae train`` does. A spawned process would spawn them too, and their queues' named
    semaphores would then outlive a worker that a stopped study terminates (Python's "leaked
    semaphore objects" warning at exit); forked, they hold no name."""
    die_with_parent()
    multiprocessing.set_start_method(start_method, force=True)


def worker_pool(workers: int) -> futures.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (spawn: safe when this process has started torch's
    threads), each set up by :func:`worker_setup`."""
    return futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=worker_setup,
                                       initargs=(multiprocessing.get_start_method(),))
