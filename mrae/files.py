"""Atomic writes and their temporary files: a reader (a resumed run or study) never sees a
half-written checkpoint, marker or results file.

Every atomic write goes through a temporary file ``.<name>.<pid>.tmp`` in the target's folder
(:func:`temp_path`), fsynced and then moved over the target with ``os.replace``. A process killed
mid-write leaves at worst such a temporary file; :func:`remove_stale_temp_files` deletes those
whose writer is gone, and never any other file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


def temp_path(path: str | os.PathLike[str]) -> Path:
    """The temporary file of this process for an atomic write of ``path``: ``.<name>.<pid>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder, fsync it, then move it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to (with ``torch.save``, ``savefig``, ...);
    it replaces ``path`` when the block ends without an error and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """``text`` (UTF-8) written atomically to ``path``."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON (with a final newline), written atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def remove_stale_temp_files(folder: str | os.PathLike[str], include_own: bool = False) -> list[Path]:
    """Delete the temporary files of killed atomic writes in ``folder``; return the deleted paths.

    Only names of the form ``.<name>.<pid>.tmp`` are considered, and only those whose ``pid`` is
    no running process (a live writer's file is kept). ``include_own``: files named with this
    process's pid are stale too (true where the caller knows it is not writing any right now,
    e.g. before a run starts: the pid may be a killed predecessor's, reused).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = TEMP_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() and not include_own:
            continue
        if pid != os.getpid() and _alive(pid):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs now (possibly another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True
