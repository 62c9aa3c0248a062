"""Atomic writes and their temporary files: a reader (a resumed run or study) never sees a
half-written checkpoint, marker, results file, image or figure, and no write goes through a link.

Every file a command writes goes through a temporary file ``.<name>.<pid>.tmp`` in the target's
folder (:func:`temp_path`), created new (``O_CREAT | O_EXCL | O_NOFOLLOW``: never an existing
file or a link someone left under that name), fsynced where the writer is ours, then moved over
the target with ``os.replace``. So a target that is a symbolic link is replaced by the new file
and its link target never touched, and a target hard-linked elsewhere gets a new inode: the other
name keeps the old bytes. Writers that take a path (``torch.save``, PIL's ``Image.save``,
matplotlib's ``savefig``: :func:`save_figure`) write into :func:`atomic_path`'s temporary file. A
process killed mid-write leaves at worst such a temporary file; :func:`remove_stale_temp_files`
deletes those whose writer is gone, and never any other file.
"""

from __future__ import annotations

import contextlib
import errno
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


def open_temp(path: str | os.PathLike[str]) -> tuple[Path, int]:
    """Create this process's temporary file for ``path`` (:func:`temp_path`) as a new, empty
    regular file and return it with a descriptor open for writing.

    A file or link already under the temporary name (a killed write of this pid, or one left
    there on purpose) is removed first, never opened: the file is created with ``O_EXCL`` and
    ``O_NOFOLLOW``.
    """
    tmp = temp_path(path)
    tmp.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return tmp, os.open(tmp, flags, 0o666)


def put_in_place(tmp: Path, path: Path, replace: bool = True) -> None:
    """Move the finished temporary file ``tmp`` to ``path``: over whatever is there (``os.replace``)
    or, with ``replace=False``, only where nothing is (a hard link, which fails with
    ``FileExistsError`` when ``path`` exists: a check and a creation in one step, so of two
    writers racing for one new path exactly one succeeds)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: create exclusively, then copy
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666),
                  "wb") as out, open(tmp, "rb") as source:
            out.write(source.read())
    tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, replace: bool = True) -> None:
    """Write ``data`` to a new temporary file in ``path``'s folder, fsync it, then move it over
    ``path`` (a link at ``path`` is replaced, its target never written); ``replace=False``: only
    where ``path`` does not exist (:func:`put_in_place`; else ``FileExistsError``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = open_temp(path)
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        put_in_place(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], replace: bool = True) -> Iterator[Path]:
    """A new, empty temporary file to write ``path``'s content to (with ``torch.save``, PIL's
    ``Image.save``, ``savefig``, ...); it replaces ``path`` (a link there included, never its
    target) when the block ends without an error and is removed otherwise. The writer must be
    told the format where it reads it from the name (the temporary name ends in ``.tmp``).
    ``replace=False``: ``path`` is created only if it does not exist then (``FileExistsError``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = open_temp(path)
    os.close(fd)
    try:
        yield tmp
        put_in_place(tmp, path, replace)
    finally:
        tmp.unlink(missing_ok=True)


def save_figure(fig: Any, path: str | os.PathLike[str], **options: Any) -> None:
    """``fig.savefig(path, **options)`` (a matplotlib figure) written atomically (:func:`atomic_path`),
    in the format of ``options["format"]`` or else of ``path``'s suffix."""
    path = Path(path)
    fmt = options.pop("format", None) or path.suffix.lstrip(".").lower() or None
    if fmt is None:
        raise ValueError(f"{path}: no suffix to take the figure's format from")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **options)


def open_lock_file(path: str | os.PathLike[str]) -> Any:
    """A lock file (for ``fcntl.flock``) opened for reading and writing, created when missing,
    never through a link: a symbolic link under its name is an OSError (``ELOOP``), and a hard
    link or another file is never truncated (its content is replaced only by whoever holds the
    lock, through this descriptor)."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    if not os.path.samestat(os.fstat(fd), os.lstat(path)) or os.fstat(fd).st_nlink > 1:
        os.close(fd)
        raise OSError(errno.EMLINK, "the lock file is linked elsewhere", str(path))
    return open(fd, "r+", encoding="utf-8")


def write_text_atomic(path: str | os.PathLike[str], text: str, replace: bool = True) -> None:
    """``text`` (UTF-8) written atomically to ``path`` (``replace=False``: only a new file)."""
    write_bytes_atomic(path, text.encode("utf-8"), replace)


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
