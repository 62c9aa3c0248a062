"""The harness of the campaigns of bad inputs (tests/test_campaign.py, tests/test_campaign_ownership.py).

A campaign is a table of :class:`Case`: the command line a careless or hostile user runs in a
:class:`World` (the session's tiny dataset, config and checkpoint, from the ``world_files`` fixture
of tests/conftest.py, and the case's own folder). :func:`run_case` runs one through the `mrae`
command line and checks what every case must hold: the expected exit code, one readable error line
on stderr (argparse's usage line may precede its own error line), no traceback, every file that
was there before byte-identical and, for a refused command, nothing new written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mrae import cli

#: The longest error line a refused command may print.
MAX_ERROR_LINE = 800


@dataclass
class World:
    """The files a case may use: `data` (a tiny synthetic dataset), `config` (a valid tiny training
    config), `checkpoint` (a trained tiny checkpoint) and `tmp` (the case's own folder); `closing`:
    what a case's setup holds open (a lock, a socket), closed when the command has run."""

    data: Path
    config: Path
    checkpoint: Path
    tmp: Path
    closing: list[Callable[[], object]] = field(default_factory=list)

    @property
    def train_json(self) -> Path:
        return self.data / "annotations" / "instances_train.json"

    @property
    def val_images(self) -> Path:
        return self.data / "images" / "val"

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def config_with(self, name: str, replace: dict[str, str]) -> Path:
        text = self.config.read_text()
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        return self.write(name, text)

    def coco(self, name: str, edit: Callable[[dict], object]) -> Path:
        """A copy of the training annotations, changed by `edit`, written to tmp/name."""
        data = json.loads(self.train_json.read_text())
        edit(data)
        return self.write(name, json.dumps(data))


@dataclass
class Case:
    id: str
    argv: Callable[[World], list[str]]
    code: int = 2
    says: str = ""  # a word the error line must contain (case-insensitive)
    new_files_ok: bool = False  # a refused command that may leave new files (none so far)
    setup: Callable[[World, pytest.MonkeyPatch], None] | None = field(default=None)


def train_argv(w: World, *extra: str, config: Path | None = None) -> list[str]:
    """`mrae train` of the world's config (or `config`) into the case's folder, with `extra`."""
    return ["train", "--config", str(config or w.config), "--out", str(w.tmp / "run"), *extra]


def study_file(w: World, rows: str, extra: str = "") -> Path:
    """A study file with the YAML `rows` (their config: row.yaml, a copy of the world's)."""
    shutil.copy(w.config, w.tmp / "row.yaml")
    return w.write("study.yaml", f"out: {w.tmp / 'study'}\n{extra}rows:\n{rows}")


def resume_from(w: World, data: bytes) -> None:
    """`data` as the last checkpoint of the case's run folder."""
    (w.tmp / "run" / "checkpoints").mkdir(parents=True)
    (w.tmp / "run" / "checkpoints" / "last.pth").write_bytes(data)


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots`."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def _deadline(seconds: int | None) -> Iterator[None]:
    """A TimeoutError after `seconds` (a hang: a FIFO read blocks forever); None: no deadline."""
    if seconds is None:
        yield
        return

    def alarm(signum, frame):
        raise TimeoutError(f"the case ran past {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_case(case: Case, world_files: tuple[Path, Path, Path], tmp_path: Path, capsys, caplog,
             monkeypatch: pytest.MonkeyPatch, hang_seconds: int | None = None) -> None:
    """Run `case` in a fresh world under `tmp_path` and check what every case must hold (see the
    module docstring); `hang_seconds`: fail a case that runs longer."""
    data, config, checkpoint = world_files
    monkeypatch.chdir(tmp_path)  # defaults such as runs/<name> land in the case's own folder
    world = World(data, config, checkpoint, tmp_path / "case")
    world.tmp.mkdir()
    if case.setup is not None:
        case.setup(world, monkeypatch)
    argv = case.argv(world)
    special = {str(p) for p in tmp_path.rglob("*") if not (p.is_file() or p.is_dir())}
    before = snapshot(data, config.parent, tmp_path)
    existing = {str(p) for p in tmp_path.rglob("*") if p.is_dir()}
    capsys.readouterr()
    try:
        with _deadline(hang_seconds):
            code = cli.main(argv)
    except SystemExit as exit_:  # argparse: usage line and one error line
        code = exit_.code
    finally:
        for close in world.closing:
            close()
    err = capsys.readouterr().err
    assert code == case.code, f"{argv}: exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    after = snapshot(data, config.parent, tmp_path)
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    assert not changed, f"changed or removed: {changed}"
    if case.code != 2:  # the right result, with what it did said on stderr (or the log)
        assert case.says.lower() in (err + caplog.text).lower(), err
        return
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    error_lines = [line for line in lines if ": error:" in line]
    assert len(error_lines) == 1 and len(lines) == 1, f"want one error line, got:\n{err}"
    assert case.says.lower() in error_lines[0].lower(), error_lines[0]
    assert len(error_lines[0]) <= MAX_ERROR_LINE, "an error line is bounded"
    if not case.new_files_ok:
        new = sorted(set(after) - set(before))
        # a run folder that existed keeps its lock file (see mrae.engine.runlock); nothing else
        new = [p for p in new if not (p.endswith("/.lock") and str(Path(p).parent) in existing)]
        assert not new, f"a refused command wrote {new}"
    assert special <= {str(p) for p in tmp_path.rglob("*")}  # FIFOs, sockets: left in place
