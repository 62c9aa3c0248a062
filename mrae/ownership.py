"""Ownership of outputs: no command writes over what it did not make without ``--overwrite``.

One mechanism for every command that writes:

- a **folder** it writes into (a run folder, an eval or predict folder, a dataset of ``mrae
  synth``) is claimed with :func:`claim_folder`: a new or empty folder becomes the command's own
  (it gets a marker, ``.mrae-owner.json``, bound to that folder); a folder whose bound marker a
  command wrote is its own while it holds nothing the marker does not list unchanged; any other
  folder needs ``--overwrite``;
- a **file** it writes is checked with :meth:`Claim.check` (inside a claimed folder) or
  :func:`check_file` (a single output such as ``stats --plot``): a new file is fine; an existing
  one must be the command's own (listed in its folder's marker with the same sha256, that is
  unchanged since the command wrote it, and written by the same producer), else it needs
  ``--overwrite``;
- even with ``--overwrite``, a path that is one of the command's inputs, holds one, or lies inside
  an input's dataset folder is refused (:func:`check_not_input`).

What a marker proves (format ``mrae-owner/2``; each promise is a test in tests/test_ownership.py):

1. **Only what it lists.** Every file a command wrote into a folder is listed by its path
   relative to the folder, with its sha256 and producer. A listed file whose bytes changed since
   is the user's; an unlisted file is never the command's, also in a folder-wide (``whole``)
   claim such as a run folder: such a folder is the command's own only while every file in it,
   at any depth, is listed unchanged (:meth:`Claim.record` lists them as they are written).
2. **Only the folder it was written in.** A marker that makes a folder the command's own
   (:func:`claim_folder`) records the folder's identity, its device and inode; a copy of the
   marker in another folder, or a copy of the whole folder, names another folder and proves
   nothing about it (a folder moved or renamed on its file system keeps its inode and stays the
   command's). A marker that only lists files (:func:`record_files` into a folder the command did
   not claim, e.g. ``docs/`` for the study's pages) carries no identity and never makes a folder
   the command's: it is content-addressed, so a copy of it proves a file only where the file's
   bytes are exactly those the command wrote, which it may then write again.
3. **No link.** A marker that is a symbolic link is no marker; nor is a file that is not a
   regular file, over 16 MiB, not JSON, or whose signature (a sha256 over its content and the
   format tag) does not match: a hand-edited or damaged marker, or a foreign file of the
   marker's name (a ``predict.json`` is never one). The signature detects edits and damage; it
   is not a secret, and it need not be: forging a marker takes deliberate work by someone who
   can write into the folder, who can as well remove its files.
4. **Old markers prove nothing.** A marker of the earlier format (``mrae-owner/1``: a
   folder-wide marker without files or identity) is not proof; the refusal names it and asks for
   ``--overwrite`` once, after which the command writes a marker of the current format (a folder
   taken with ``--overwrite`` is not the command's own: consent is not ownership; a new run
   folder is).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrae.errors import ConfigError
from mrae.files import TEMP_NAME, write_text_atomic

MARKER = ".mrae-owner.json"
FORMAT = "mrae-owner/2"
#: Earlier marker formats: read to say why they prove nothing, never as proof.
OLD_FORMATS = frozenset({"mrae-owner/1"})
#: Names that do not make a folder "not empty": the run lock, the marker, temporary files.
HOUSEKEEPING = frozenset({".lock", MARKER})
#: Folder names whose parent is the dataset folder of a file or folder inside them.
DATASET_PARTS = frozenset({"annotations", "images", "labels", "labelTxt"})
#: The largest marker read (bytes).
MARKER_LIMIT = 16 << 20


def _signature(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "signature"}
    text = str(record.get("format")) + "\0" + json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_identity(folder: str | os.PathLike[str]) -> dict[str, int] | None:
    """``{"device", "inode"}`` of a folder (through a link to it), None when it is not one."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    return {"device": info.st_dev, "inode": info.st_ino}


def _load_marker(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """The signed record of ``folder``'s marker file (any identity) and, when there is none, why
    (an empty reason: no marker file at all)."""
    path = folder / MARKER
    try:
        info = os.lstat(path)
    except OSError:
        return None, ""
    if stat.S_ISLNK(info.st_mode):
        return None, f"its {MARKER} is a link, which proves nothing"
    if not stat.S_ISREG(info.st_mode) or info.st_size > MARKER_LIMIT:
        return None, f"its {MARKER} is not a marker mrae wrote"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, encoding="utf-8") as f:
            record = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None, f"its {MARKER} is not a marker mrae wrote"
    if not isinstance(record, dict):
        return None, f"its {MARKER} is not a marker mrae wrote"
    if record.get("format") in OLD_FORMATS:
        return None, (f"its {MARKER} is of an earlier mrae ({record['format']}), which proves "
                      "nothing now")
    if record.get("format") != FORMAT or record.get("signature") != _signature(record):
        return None, f"its {MARKER} is not a marker mrae wrote (or was edited)"
    files = record.get("files")
    bound = record.get("folder")
    if (not isinstance(record.get("command"), str) or not isinstance(record.get("whole"), bool)
            or not isinstance(files, dict) or not all(_valid_entry(k, v) for k, v in files.items())
            or not (bound is None or (isinstance(bound, dict) and set(bound) == {"device", "inode"}))):
        return None, f"its {MARKER} is not a marker mrae wrote"
    return record, ""


def _valid_entry(name: Any, entry: Any) -> bool:
    return (isinstance(name, str) and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            and (entry.get("by") is None or isinstance(entry.get("by"), str)))


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of ``folder`` when it is one a command wrote (signature and types checked, not
    a link, the current format), else None. Its ``folder`` entry, when not None, is the identity
    of the folder it was written in: see :func:`binds`."""
    return _load_marker(Path(folder))[0]


def binds(marker: dict[str, Any] | None, folder: str | os.PathLike[str]) -> bool:
    """Whether ``marker`` was written in ``folder`` itself as the marker of a claimed folder
    (its recorded identity is the folder's device and inode)."""
    return marker is not None and marker.get("folder") is not None and \
        marker["folder"] == folder_identity(folder)


def _is_housekeeping(name: str) -> bool:
    return name in HOUSEKEEPING or TEMP_NAME.fullmatch(name) is not None


def _files_below(folder: Path) -> list[str]:
    """Every file (or other non-folder entry) under ``folder``, at any depth, as a path relative
    to it, without housekeeping names; links are listed, never followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for name in files + [d for d in dirs if (base / d).is_symlink()]:
            if not _is_housekeeping(name):
                found.append((base / name).relative_to(folder).as_posix())
    return sorted(found)


def _unchanged(folder: Path, name: str, entry: Any, producer: Any = ...) -> bool:
    """Whether ``folder/name`` is a regular file (not a link) whose sha256 is the entry's (and
    whose producer is ``producer``, unless ``...``)."""
    if not isinstance(entry, dict) or (producer is not ... and entry.get("by") != producer):
        return False
    path = folder / name
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return entry.get("sha256") == sha256_file(path)
    except OSError:
        return False


def dataset_roots(paths: Iterable[str | os.PathLike[str] | None]) -> list[Path]:
    """The dataset folders of input data paths (see :func:`dataset_root`), without repeats."""
    roots: list[Path] = []
    for p in paths:
        if p is not None and (root := dataset_root(p)) not in roots:
            roots.append(root)
    return roots


def dataset_root(path: str | os.PathLike[str]) -> Path:
    """The dataset an input belongs to: for a file or folder inside ``annotations/``, ``images/``,
    ``labels/`` or ``labelTxt/`` (or ``images/<split>/``), the folder above it when that folder
    holds two of these (a dataset's layout), else that one folder; else the input itself."""
    path = Path(path).resolve()
    for folder in (path.parent, path.parent.parent):
        if folder.name in DATASET_PARTS:
            parts = sum((folder.parent / part).is_dir() for part in DATASET_PARTS)
            return folder.parent if parts >= 2 else folder
    return path


def _places(target: str | os.PathLike[str]) -> list[Path]:
    """Where writing ``target`` lands: the path with every link resolved, and the path with its
    folder resolved but its last part kept (a link there is replaced where it lies)."""
    path = Path(target)
    places = [path.resolve()]
    if path.name and (kept := path.absolute().parent.resolve() / path.name) not in places:
        places.append(kept)
    return places


def check_not_input(target: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None],
                    flag: str = "--out", datasets: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse an output ``target`` (new or existing, a file or a folder) that is an input, holds
    one, or lies inside an input folder or one of ``datasets`` (the inputs' dataset folders,
    :func:`dataset_root`), directly or through a link: one line, ``--overwrite`` or not."""
    sources = [(item, Path(item).resolve()) for item in inputs if item is not None]
    roots = [(root, Path(root).resolve()) for root in datasets]
    for place in _places(target):
        for item, source in sources:
            if place == source:
                raise ConfigError(f"{flag} {target} is an input of this command; write the output "
                                  "elsewhere")
            if source.is_relative_to(place):
                raise ConfigError(f"{flag} {target} holds the input {item}; write the output elsewhere")
            if source.is_dir() and place.is_relative_to(source):
                raise ConfigError(f"{flag} {target} is inside the input folder {item}; write the "
                                  "output elsewhere")
        for root, folder in roots:
            if place.is_relative_to(folder):
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
    datasets = list(datasets)
    check_not_input(path, sources, flag, datasets)
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
    """Whether ``path`` is listed in its folder's marker by ``command`` and ``producer`` with its
    present sha256 (a per-file proof: content-addressed, see the module's promise 2)."""
    marker = read_marker(path.parent)
    if marker is None or marker["command"] != command:
        return False
    return _unchanged(path.parent, path.name, marker["files"].get(path.name), producer)


def _entries(folder: Path, names: Iterable[str], producer: str | None,
             earlier: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with each of ``names`` (relative to ``folder``) that is a regular file now listed
    with its sha256 and ``producer``, and the entries of files gone since left out."""
    entries = {}
    for name, entry in earlier.items():
        try:
            if stat.S_ISREG(os.lstat(folder / name).st_mode):
                entries[name] = entry
        except OSError:
            continue
    for name in names:
        path = folder / name
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                entries[name] = {"sha256": sha256_file(path), "by": producer}
        except OSError:
            continue
    return entries


def record_files(paths: Sequence[str | os.PathLike[str]], command: str,
                 producer: str | None = None) -> None:
    """Note in each file's folder marker that ``command`` wrote these files (their sha256), so that
    it may replace them later without ``--overwrite``. A folder with another command's marker
    keeps it (its files are then replaced only with ``--overwrite``). A marker written here for a
    folder that has none lists files only and never makes the folder the command's (promise 2)."""
    by_folder: dict[Path, list[str]] = {}
    for p in map(Path, paths):
        by_folder.setdefault(p.parent, []).append(p.name)
    for folder, names in by_folder.items():
        marker = read_marker(folder)
        if marker is not None and marker["command"] != command:
            continue
        bound = binds(marker, folder)
        entries = _entries(folder, names, producer, marker["files"] if marker else {})
        _write_marker(folder, command, bool(bound and marker and marker["whole"]), entries, bind=bound)


def _write_marker(folder: Path, command: str, whole: bool, files: dict[str, Any],
                  bind: bool = True, new: bool = False, flag: str = "--out") -> None:
    """Write ``folder``'s marker: ``command``, ``whole``, the file entries and (``bind``) the
    folder's identity. ``new``: the folder is being claimed: whatever marker file is there (not
    a valid one: the caller checked) is removed and the marker created only if no other command
    created one meanwhile (a check and a creation in one step: of two commands claiming one
    folder at the same time, exactly one gets it; the other is refused in one line)."""
    record: dict[str, Any] = {"format": FORMAT, "command": command, "whole": whole,
                              "folder": folder_identity(folder) if bind else None, "files": files}
    record["signature"] = _signature(record)
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    try:
        if new:
            (folder / MARKER).unlink(missing_ok=True)
        write_text_atomic(folder / MARKER, text, replace=not new)
    except FileExistsError:
        taker = read_marker(folder)
        raise ConfigError(f"{flag} {folder} was taken by another command running at the same time "
                          f"(mrae {taker['command'] if taker else 'unknown'}); choose another "
                          "folder") from None
    except OSError as error:  # read-only, full disk
        raise ConfigError(f"{folder}: cannot write into the folder ({error.strerror or error}); "
                          "choose a writable place") from None


@dataclass
class Claim:
    """An output folder a command may write into (see :func:`claim_folder`)."""

    folder: Path
    command: str
    own: bool  # new, empty or marked by an accepted command (False: taken with --overwrite)
    whole: bool  # every file in it is the command's (a run folder, a dataset), each listed
    overwrite: bool
    inputs: list[Path] = field(default_factory=list)
    flag: str = "--out"
    datasets: list[Path] = field(default_factory=list)
    owner: str = ""  # the command whose marker makes the folder own (``command`` or an accepted one)

    def check(self, name: str | os.PathLike[str], producer: str | None = None) -> Path:
        """The path of output ``name`` in the folder, refused (one line) when it exists and is
        neither the command's own nor allowed by ``--overwrite``; never an input."""
        path = self.folder / name
        if any(path.resolve() == i.resolve() for i in self.inputs):
            raise ConfigError(f"{self.flag} {self.folder}: writing {path.name} would replace the "
                              f"input {path}; choose another folder")
        if not (path.exists() or path.is_symlink()):
            return path
        if path.is_dir() and not path.is_symlink():
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
        if not self.own or binds(read_marker(self.folder), self.folder):
            return False
        make_folder(self.folder, self.flag)
        _write_marker(self.folder, self.command, self.whole, {}, new=True, flag=self.flag)
        self.owner = self.command
        return True

    def record(self, paths: Sequence[str | os.PathLike[str]], producer: str | None = None) -> None:
        """List the files just written (paths inside the folder, at any depth) in its marker as
        the command's own, with their sha256 (a folder the command owns only)."""
        if not self.own:
            return
        marker = read_marker(self.folder)
        if not binds(marker, self.folder) or marker["command"] != (self.owner or self.command):
            return
        names = [Path(p).relative_to(self.folder).as_posix() for p in paths]
        _write_marker(self.folder, marker["command"], marker["whole"],
                      _entries(self.folder, names, producer, marker["files"]))


def record_whole(folder: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]]) -> bool:
    """List ``paths`` (files inside ``folder``, at any depth) in the folder's bound marker, whatever
    its command (a run folder's: what the run wrote since its claim); return whether the folder
    has such a marker. A folder taken with ``--overwrite`` has none and stays so."""
    folder = Path(folder)
    marker = read_marker(folder)
    if not binds(marker, folder):
        return False
    names = [Path(p).relative_to(folder).as_posix() for p in paths]
    _write_marker(folder, marker["command"], marker["whole"], _entries(folder, names, None, marker["files"]))
    return True


def claim_folder(folder: str | os.PathLike[str], command: str, *,
                 inputs: Iterable[str | os.PathLike[str] | None] = (), overwrite: bool = False,
                 whole: bool = False, accept: Sequence[str] = (), flag: str = "--out",
                 create: bool = True, exclusive: bool = False,
                 datasets: Iterable[str | os.PathLike[str]] = (), kept: Sequence[str] = ()) -> Claim:
    """Check that ``command`` may write into ``folder``; create and mark it when it is new or empty.

    The folder may be new, empty (but for a lock, a marker, temporary files), or marked by
    ``command`` or one of ``accept`` with a marker written in this folder (promise 2); another
    folder needs ``overwrite`` and even then must not be, hold or lie inside an input or one of
    ``datasets``. ``whole``: the folder is the command's alone (a run folder): it is its own while
    every file in it, at any depth, is listed unchanged in the marker. ``exclusive``: a marked
    folder must also hold nothing but the files its marker lists. ``kept``: names at the folder's
    top that the command itself keeps appending to while it runs (a worker's log), which a whole
    claim of its own marked folder does not count. Raises a one-line ConfigError.
    """
    folder = Path(folder)
    sources = [Path(i) for i in inputs if i is not None]
    roots = [Path(d) for d in datasets]
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file, not a folder; choose another {flag}")
    check_not_input(folder, sources, flag, roots)
    marker, why = _load_marker(folder) if folder.is_dir() else (None, "")
    if marker is not None and not binds(marker, folder):
        marker, why = None, f"its {MARKER} was written in another folder, which proves nothing here"
    try:
        names = [p.name for p in folder.iterdir() if not _is_housekeeping(p.name)] if folder.is_dir() else []
    except OSError as error:
        raise ConfigError(f"{flag} {folder}: cannot list the folder ({error.strerror}); choose "
                          f"another {flag}") from None
    if marker is not None and marker["command"] in (command, *accept):
        own_whole = whole or marker["whole"]
        listed = marker["files"]
        if own_whole:
            names = [n for n in _files_below(folder)
                     if n not in kept and not _unchanged(folder, n, listed.get(n))]
        elif exclusive:
            names = [n for n in names if n not in listed]
        if not names or not (own_whole or exclusive):
            return Claim(folder, command, True, own_whole, overwrite, sources, flag, roots, marker["command"])
    if not names and marker is not None and marker["command"] not in (command, *accept):
        if not overwrite:  # another command's folder, maybe being written right now
            raise ConfigError(f"{flag} {folder} is mrae {marker['command']}'s folder (it may be "
                              "writing it now); choose another folder, or pass --overwrite")
        return Claim(folder, command, False, False, overwrite, sources, flag, roots)
    if not names:
        if create:
            make_folder(folder, flag)
            _write_marker(folder, command, whole, {}, new=True, flag=flag)
        return Claim(folder, command, True, whole, overwrite, sources, flag, roots, command)
    if not overwrite:
        shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
        because = f"; {why}" if why else ""
        raise ConfigError(f"{flag} {folder} holds {len(names)} file(s) that mrae {command} did not "
                          f"write or that changed since ({shown}){because}; give a new or empty "
                          "folder, or pass --overwrite")
    check_not_input(folder, sources, flag, roots)
    return Claim(folder, command, False, False, overwrite, sources, flag, roots)


def make_folder(folder: Path, flag: str = "--out") -> None:
    """``folder`` and its parents created, an OS error (read-only, full disk) as one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{flag} {folder}: cannot create the folder ({error.strerror or error}); "
                          "choose a writable place") from None
