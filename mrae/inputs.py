"""Reading a user's input file safely: only regular files, only up to a stated size.

A FIFO would block a reader forever, ``/dev/zero`` or ``/dev/urandom`` would fill the memory, a
folder or a socket cannot be read as a file: :func:`check_regular` refuses all of them from their
``stat`` alone, before anything opens them, and :func:`read_bytes` then opens the file without
blocking, checks again that what it opened is a regular file, and reads at most ``limit`` bytes.
Each failure is one :class:`~mrae.errors.MraeError` line naming the file and what to do.
"""

from __future__ import annotations

import os
import stat

from mrae.errors import DataError, MraeError

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

#: Size limits of the inputs the commands read (bytes).
CONFIG_LIMIT = 1 * MIB  # a YAML config, a study file, a names file
LABEL_LIMIT = 64 * MIB  # one label file (YOLO, VisDrone, DOTA, VOC XML)
JSON_LIMIT = 8 * GIB  # a COCO JSON (COCO-train's instances file is 450 MB)
CHECKPOINT_LIMIT = 16 * GIB  # a checkpoint or a state dict
IMAGE_LIMIT = 4 * GIB  # one image file (Pillow's pixel limit refuses decompression bombs)


def describe_size(size: int) -> str:
    """``"1.5 GiB"``, ``"12 MiB"``, ``"300 bytes"``."""
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], limit: int, *, what: str = "file",
                  error: type[MraeError] = DataError) -> int:
    """The size of ``path`` when it is a regular file of at most ``limit`` bytes; else ``error``
    in one line (missing, a folder, a FIFO, a device, a socket, too large). Opens nothing."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found; check the path") from None
    except OSError as failure:
        raise error(f"{path}: cannot read the file ({failure.strerror or failure})") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        raise error(f"{path}: is {kind}, not a regular file; give the path of a {what}")
    if info.st_size > limit:
        raise error(f"{path}: {describe_size(info.st_size)}, over the {describe_size(limit)} limit "
                    f"for a {what}; give a smaller file")
    return info.st_size


def read_bytes(path: str | os.PathLike[str], limit: int, *, what: str = "file",
               error: type[MraeError] = DataError) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (see the module)."""
    check_regular(path, limit, what=what, error=error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as failure:
        raise error(f"{path}: cannot read the {what} ({failure.strerror or failure})") from None
    with os.fdopen(fd, "rb") as f:
        kind = _kind(os.fstat(f.fileno()).st_mode)  # replaced between the stat and the open
        if kind is not None:
            raise error(f"{path}: is {kind}, not a regular file; give the path of a {what}")
        try:
            data = f.read(limit + 1)
        except OSError as failure:
            raise error(f"{path}: cannot read the {what} ({failure.strerror or failure})") from None
    if len(data) > limit:
        raise error(f"{path}: over the {describe_size(limit)} limit for a {what}; give a smaller file")
    return data


def read_text(path: str | os.PathLike[str], limit: int, *, what: str = "file",
              error: type[MraeError] = DataError) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark dropped), read as :func:`read_bytes` does."""
    data = read_bytes(path, limit, what=what, error=error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as failure:
        line = data[: failure.start].count(b"\n") + 1
        raise error(f"{path} line {line}: not UTF-8 text; save the {what} as UTF-8") from None


def shorten(text: str, limit: int = 200) -> str:
    """``text`` on one line and cut to ``limit`` characters (an error message never echoes a
    whole file or an exponentially long value)."""
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


__all__ = ["CHECKPOINT_LIMIT", "CONFIG_LIMIT", "IMAGE_LIMIT", "JSON_LIMIT", "LABEL_LIMIT", "check_regular",
           "describe_size", "read_bytes", "read_text", "shorten"]
