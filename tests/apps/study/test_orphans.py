"""A killed study takes its workers with it (no orphan keeps training a run); a stopped one leaves
no named semaphore of its workers' DataLoaders behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent("""
    import os, sys, time
    from mrae.parallel import worker_pool

    def work(path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)

    if __name__ == "__main__":
        with worker_pool(1) as pool:
            pool.submit(work, sys.argv[1]).result()
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split()[2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_die_with_a_killed_study(tmp_path):
    script, marker = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not (marker.is_file() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(marker.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        parent.kill()


STOPPED = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from mrae.parallel import worker_pool

    def work(path):
        from torch.utils.data import DataLoader
        loader = DataLoader(list(range(10**6)), batch_size=2, num_workers=1, persistent_workers=True)
        for i, _ in enumerate(loader):
            if i == 0:
                with open(path, "w") as f:
                    f.write("iterating")
            time.sleep(0.01)

    if __name__ == "__main__":
        with worker_pool(1) as pool:
            pool.submit(work, sys.argv[1])
            deadline = time.monotonic() + 120
            while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
                time.sleep(0.05)
            # what the study does on Ctrl-C (runner._run_pool)
            for process in multiprocessing.active_children():
                process.terminate()
""")


def test_a_stopped_study_leaves_no_semaphore_of_its_workers_dataloaders(tmp_path):
    script, marker = tmp_path / "stopped.py", tmp_path / "iterating"
    script.write_text(STOPPED)
    done = subprocess.run([sys.executable, str(script), str(marker)], capture_output=True, text=True,
                          timeout=300)
    assert marker.is_file(), done.stderr
    assert "leaked semaphore" not in done.stderr
