"""Work spread over spawned worker processes, in order, that fails instead of hanging.

``multiprocessing.Pool`` replaces a worker that dies and waits for its task for ever; a
``ProcessPoolExecutor`` reports the death. A worker dies, for example, when the system kills it
for memory, or when the script that called mrae has no ``if __name__ == "__main__":`` guard (each
spawned worker imports the script again; :func:`mrae.cli.main` refuses to run there).
"""

from __future__ import annotations

import multiprocessing
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
