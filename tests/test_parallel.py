"""map_in_processes: results in order, and a worker that dies is one error, never a hang."""

from __future__ import annotations

import os

import pytest

from mrae.errors import MraeError
from mrae.parallel import map_in_processes


def _square(x: int) -> int:
    return x * x


def _die_on_three(x: int) -> int:
    if x == 3:
        os._exit(1)  # as the system's out-of-memory killer would end it
    return x


def test_results_come_in_the_jobs_order():
    assert list(map_in_processes(_square, range(20), workers=2, what="squares", chunksize=3)) == [
        x * x for x in range(20)]


def test_a_dead_worker_is_one_error_naming_the_work():
    with pytest.raises(MraeError, match="a worker process of the test jobs stopped without a result"):
        list(map_in_processes(_die_on_three, range(8), workers=2, what="the test jobs", chunksize=1))
