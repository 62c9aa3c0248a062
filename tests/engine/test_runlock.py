"""One writer per run folder: a second holder is refused at once, a released lock is free again."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from mrae.engine.runlock import RunLock
from mrae.errors import ConfigError


def _hold(run_dir, started, release):
    with RunLock(run_dir):
        started.set()
        release.wait(30)


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    context = multiprocessing.get_context("fork")
    started, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(tmp_path / "run", started, release))
    holder.start()
    try:
        assert started.wait(30)
        with pytest.raises(ConfigError, match=f"pid {holder.pid}") as error:
            with RunLock(tmp_path / "run"):
                pass
        assert "\n" not in str(error.value)
    finally:
        release.set()
        holder.join(30)
    with RunLock(tmp_path / "run") as lock:  # released on exit: free again
        assert lock.path.read_text() == str(os.getpid())


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    context = multiprocessing.get_context("fork")
    started, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(tmp_path / "run", started, release))
    holder.start()
    assert started.wait(30)
    holder.kill()
    holder.join(30)
    with RunLock(tmp_path / "run"):
        pass
