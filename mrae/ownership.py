"""Ownership of outputs: no command writes over what it did not make without ``--overwrite``.

One mechanism for every command that writes:

- a **folder** it writes into (a run folder, an eval or predict folder, a dataset of ``mrae
  synth``) is claimed with :func:`claim_folder`: a new or empty folder becomes the command's own
  (it gets a marker, ``.mrae-owner.json``); a folder whose marker a command wrote is its own; any
  other folder needs ``--overwrite``;
- a **file** it writes is checked with :meth:`Claim.check` (inside a claimed folder) or
  :func:`check_file` (a single output such as ``stats --plot``): a new file is fine; an existing
  one must be the command's own (listed in its folder's marker with the same sha256, that is
  unchanged since the command wrote it, and written by the same producer), else it needs
  ``--overwrite``;
- even with ``--overwrite``, a path that is one of the command's inputs, holds one, or lies inside
  an input's dataset folder is refused (:func:`check_not_input`).

The marker is signed: a sha256 over its content and a tag, so a file that merely has the marker's
name (a foreign or hand-edited one) is not a marker, and a marker copied from another folder
proves nothing about files whose bytes differ. Markers name files relative to their folder, so a
folder moved or checked out elsewhere stays its command's own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrae.errors import ConfigError
from mrae.files import TEMP_NAME, write_text_atomic

MARKER = ".mrae-owner.json"
FORMAT = "mrae-owner/1"
#: Names that do not make a folder "not empty": the run lock, the marker, temporary files.
HOUSEKEEPING = frozenset({".lock", MARKER})
#: Folder names whose parent is the dataset folder of a file or folder inside them.
DATASET_PARTS = frozenset({"annotations", "images", "labels", "labelTxt"})


def _signature(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "signature"}
    text = FORMAT + "\0" + json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of ``folder`` when it is one a command wrote (signature checked), else None."""
    path = Path(folder) / MARKER
    try:
        if not path.is_file() or path.stat().st_size > 16 << 20:
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    if record.get("signature") != _signature(record):
        return None
    if not isinstance(record.get("command"), str) or not isinstance(record.get("files"), dict):
        return None
    return record


def _is_housekeeping(name: str) -> bool:
    return name in HOUSEKEEPING or TEMP_NAME.fullmatch(name) is not None


def dataset_roots(paths: Iterable[str | os.PathLike[str] | None]) -> list[Path]:
    """The dataset folders of input data paths (see :func:`dataset_root`), without repeats."""
    roots: list[Path] = []
    for p in paths:
        if p is not None and (root := dataset_root(p)) not in roots:
            roots.append(root)
    return roots


def dataset_root(path: str | os.PathLike[str]) -> Path:
    """The dataset an input belongs to: the folder above ``annotations/``, ``images/``,
    ``labels/`` (or ``images/<split>/``) that holds it; else the input itself."""
    path = Path(path).resolve()
    for folder in (path.parent, path.parent.parent):
        if folder.name in DATASET_PARTS:
            return folder.parent
    return path


def check_not_input(target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None],
                    flag: str = "--out", datasets: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse a ``target`` that is an input, holds one, lies inside an input folder or inside one
    of ``datasets`` (see :func:`dataset_root`): never written over, ``--overwrite`` or not."""
    resolved = Path(target).resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if resolved == source:
            raise ConfigError(f"{flag} {target} is an input of this command; write the output elsewhere")
        if source.is_relative_to(resolved):
            raise ConfigError(f"{flag} {target} holds the input {item}; write the output elsewhere")
        if source.is_dir() and resolved.is_relative_to(source):
            raise ConfigError(f"{flag} {target} is inside the input folder {item}; write the "
                              "output elsewhere")
    for root in datasets:
        if resolved.is_relative_to(Path(root).resolve()):
            raise ConfigError(f"{flag} {target} is inside the input dataset {root}; write the "
                              "output elsewhere")


def _refuse(path: Path, command: str, flag: str, why: str) -> ConfigError:
    return ConfigError(f"{flag} {path} {why}, which mrae {command} did not write (or it has changed "
                       "since); pass --overwrite to replace it or choose another path")


def check_file(path: str | os.PathLike[str], command: str, *,
               inputs: Iterable[str | os.PathLike[str] | None] = (), overwrite: bool = False,
               flag: str = "--out", producer: str | None = None,
               datasets: Iterable[str | os.PathLike[str]] = ()) -> None:
    """May ``command`` write the single output file ``path``? It may when the path is new, or is
    the command's own (listed unchanged in its folder's marker), or with ``overwrite``; never when
    it is a folder, an input or inside an input's dataset. Raises a one-line ConfigError."""
    path = Path(path)
    sources = [i for i in inputs if i is not None]
    if any(Path(path).resolve() == Path(i).resolve() for i in sources):
        raise ConfigError(f"{flag} {path} is an input of this command; write the output elsewhere")
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give the path of a file")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ConfigError(f"{flag} {path} exists and is not a regular file; choose another path")
        if _listed_unchanged(path, command, producer):
            return
        if not overwrite:
            raise _refuse(path, command, flag, "already exists")
        check_not_input(path, sources, flag, datasets)


def _listed_unchanged(path: Path, command: str, producer: str | None) -> bool:
    marker = read_marker(path.parent)
    if marker is None or marker["command"] != command:
        return False
    entry = marker["files"].get(path.name)
    if not isinstance(entry, dict) or entry.get("by") != producer:
        return False
    try:
        return entry.get("sha256") == sha256_file(path)
    except OSError:
        return False


def record_files(paths: Sequence[str | os.PathLike[str]], command: str,
                 producer: str | None = None) -> None:
    """Note in each file's folder marker that ``command`` wrote these files (their sha256), so that
    it may replace them later without ``--overwrite``. A folder with another command's marker
    keeps it (its files are then replaced only with ``--overwrite``)."""
    by_folder: dict[Path, list[Path]] = {}
    for p in map(Path, paths):
        by_folder.setdefault(p.parent, []).append(p)
    for folder, files in by_folder.items():
        marker = read_marker(folder)
        if marker is not None and marker["command"] != command:
            continue
        entries = dict(marker["files"]) if marker else {}
        for p in files:
            if p.is_file():
                entries[p.name] = {"sha256": sha256_file(p), "by": producer}
        _write_marker(folder, command, bool(marker and marker.get("whole")), entries)


def _write_marker(folder: Path, command: str, whole: bool, files: dict[str, Any]) -> None:
    record: dict[str, Any] = {"format": FORMAT, "command": command, "whole": whole, "files": files}
    record["signature"] = _signature(record)
    try:
        write_text_atomic(folder / MARKER, json.dumps(record, indent=1, sort_keys=True) + "\n")
    except OSError as error:  # read-only, full disk
        raise ConfigError(f"{folder}: cannot write into the folder ({error.strerror or error}); "
                          "choose a writable place") from None


@dataclass
class Claim:
    """An output folder a command may write into (see :func:`claim_folder`)."""

    folder: Path
    command: str
    own: bool  # new, empty or marked by an accepted command (False: taken with --overwrite)
    whole: bool  # every file in it is the command's (a run folder, a dataset)
    overwrite: bool
    inputs: list[Path] = field(default_factory=list)
    flag: str = "--out"
    datasets: list[Path] = field(default_factory=list)

    def check(self, name: str | os.PathLike[str], producer: str | None = None) -> Path:
        """The path of output ``name`` in the folder, refused (one line) when it exists and is
        neither the command's own nor allowed by ``--overwrite``; never an input."""
        path = self.folder / name
        if any(path.resolve() == i.resolve() for i in self.inputs):
            raise ConfigError(f"{self.flag} {self.folder}: writing {path.name} would replace the "
                              f"input {path}; choose another folder")
        if not (path.exists() or path.is_symlink()):
            return path
        if path.is_dir():
            raise ConfigError(f"{self.flag} {self.folder}: {path} is a folder; remove it or choose "
                              "another folder")
        if (self.own and self.whole) or _listed_unchanged(path, self.command, producer):
            return path
        if not self.overwrite:
            raise _refuse(path, self.command, self.flag, "already exists")
        check_not_input(path, self.inputs, self.flag, self.datasets)
        return path

    def mark(self) -> bool:
        """Create the folder and write its marker (a folder claimed with ``create=False``, e.g.
        once a run's lock is held), unless it is not the command's own or is marked already;
        return whether a marker was written."""
        if not self.own or read_marker(self.folder) is not None:
            return False
        make_folder(self.folder, self.flag)
        _write_marker(self.folder, self.command, self.whole, {})
        return True

    def record(self, paths: Sequence[str | os.PathLike[str]], producer: str | None = None) -> None:
        """Note the files just written as the command's own (a folder it owns only)."""
        if self.own and not self.whole:
            record_files(paths, self.command, producer)


def claim_folder(folder: str | os.PathLike[str], command: str, *,
                 inputs: Iterable[str | os.PathLike[str] | None] = (), overwrite: bool = False,
                 whole: bool = False, accept: Sequence[str] = (), flag: str = "--out",
                 create: bool = True, exclusive: bool = False,
                 datasets: Iterable[str | os.PathLike[str]] = ()) -> Claim:
    """Check that ``command`` may write into ``folder``; create and mark it when it is new or empty.

    The folder may be new, empty (but for a lock, a marker, temporary files), or marked by
    ``command`` or one of ``accept``; another folder needs ``overwrite`` and even then must not be,
    hold or lie inside an input or one of ``datasets``. ``whole``: every file in the folder is the
    command's (checked by the marker alone, not file by file). ``exclusive``: a marked folder
    must also hold nothing but the files its marker lists. Raises a one-line ConfigError.
    """
    folder = Path(folder)
    sources = [Path(i) for i in inputs if i is not None]
    roots = [Path(d) for d in datasets]
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file, not a folder; choose another {flag}")
    if any(folder.resolve() == i.resolve() for i in sources):
        raise ConfigError(f"{flag} {folder} is an input of this command; write the output elsewhere")
    marker = read_marker(folder) if folder.is_dir() else None
    try:
        names = [p.name for p in folder.iterdir() if not _is_housekeeping(p.name)] if folder.is_dir() else []
    except OSError as error:
        raise ConfigError(f"{flag} {folder}: cannot list the folder ({error.strerror}); choose "
                          f"another {flag}") from None
    if marker is not None and marker["command"] in (command, *accept):
        own_whole = whole or bool(marker.get("whole"))
        if exclusive and not own_whole:
            names = [n for n in names if n not in marker["files"]]
        if not exclusive or own_whole or not names:
            return Claim(folder, command, True, own_whole, overwrite, sources, flag, roots)
    if not names:
        if create:
            make_folder(folder, flag)
            _write_marker(folder, command, whole, {})
        return Claim(folder, command, True, whole, overwrite, sources, flag, roots)
    if not overwrite:
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(f"{flag} {folder} holds {len(names)} file(s) that mrae {command} did not "
                          f"write ({shown}); give a new or empty folder, or pass --overwrite")
    check_not_input(folder, sources, flag, roots)
    return Claim(folder, command, False, False, overwrite, sources, flag, roots)


def make_folder(folder: Path, flag: str = "--out") -> None:
    """``folder`` and its parents created, an OS error (read-only, full disk) as one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{flag} {folder}: cannot create the folder ({error.strerror or error}); "
                          "choose a writable place") from None
