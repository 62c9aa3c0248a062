"""One writer per run folder: an OS file lock held for the life of the process that writes it.

``with RunLock(run_dir): ...`` takes an exclusive ``flock`` on ``run_dir/.lock`` without waiting;
a second process on the same folder (a second ``mrae train --out``, a restarted study whose old
worker still runs) fails at once with a one-line :class:`~mrae.errors.ConfigError` naming the
holder's pid. The kernel releases the lock on any exit, a kill included, so a stale lock file
never blocks a later run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from mrae.errors import ConfigError
from mrae.files import open_lock_file

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive, non-blocking lock on ``run_dir/.lock`` (the folder is created if needed)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._file = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open_lock_file(self.path)
        except OSError as error:  # read-only or full disk, a file in the way
            raise ConfigError(
                f"{self.path.parent}: cannot write the run folder ({error.strerror or error}); "
                "choose a writable --out"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"{self.path.parent}: another process (pid {holder}) is writing this run; wait for "
                "it to end or choose another run folder (--out)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
