"""Atomic writes (mrae.files): a failed write keeps the old file; only killed writes' temporary
files are removed."""

from __future__ import annotations

import json
import os

import pytest

import mrae.files
from mrae.files import (
    atomic_path,
    open_lock_file,
    remove_stale_temp_files,
    save_figure,
    temp_path,
    write_json_atomic,
    write_text_atomic,
)

DEAD_PID = 99_999_999  # above Linux's largest pid (2**22): never a running process


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "final_metrics.json"
    write_json_atomic(path, {"AP": 0.5})
    assert json.loads(path.read_text()) == {"AP": 0.5}

    def no_space(fd: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(mrae.files.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_text_atomic(path, '{"AP": 0.')
    assert json.loads(path.read_text()) == {"AP": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["final_metrics.json"]


def test_only_the_temporary_files_of_gone_writers_are_removed(tmp_path):
    own = temp_path(tmp_path / "config.yaml")
    dead = tmp_path / f".metrics.jsonl.{DEAD_PID}.tmp"
    live = tmp_path / f".last.pth.{os.getppid()}.tmp"
    users = [tmp_path / "a.tmp", tmp_path / f"b.{DEAD_PID}.tmp", tmp_path / ".c.tmp"]
    for path in [own, dead, live, *users]:
        path.write_text("partial")
    assert own.name == f".config.yaml.{os.getpid()}.tmp"

    assert remove_stale_temp_files(tmp_path) == [dead]  # this process may be writing its own
    assert remove_stale_temp_files(tmp_path, include_own=True) == [own]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, *(p.name for p in users)])
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_an_atomic_write_replaces_a_symlink_and_never_writes_its_target(tmp_path):
    target = tmp_path / "users_photo.jpg"
    target.write_bytes(b"the user's photo")
    link = tmp_path / "out.json"
    link.symlink_to(target)
    write_text_atomic(link, "new")
    assert target.read_bytes() == b"the user's photo"
    assert not link.is_symlink() and link.read_text() == "new"


def test_an_atomic_write_gives_a_hard_linked_file_a_new_inode(tmp_path):
    album = tmp_path / "album.jpg"
    album.write_bytes(b"holiday")
    out = tmp_path / "out.jpg"
    os.link(album, out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"drawing")
    assert album.read_bytes() == b"holiday" and out.read_bytes() == b"drawing"
    assert album.stat().st_nlink == 1


def test_a_link_left_under_the_temporary_name_is_removed_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out.txt"
    temp_path(out).symlink_to(victim)
    write_text_atomic(out, "new")
    assert victim.read_text() == "keep" and out.read_text() == "new"
    temp_path(out).symlink_to(victim)
    with atomic_path(out) as tmp:
        assert tmp.is_file() and not tmp.is_symlink() and tmp.stat().st_size == 0
        tmp.write_text("newer")
    assert victim.read_text() == "keep" and out.read_text() == "newer"


def test_atomic_path_removes_its_temporary_file_when_the_writer_fails(tmp_path):
    out = tmp_path / "plot.png"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_save_figure_writes_the_suffixs_format_through_a_temporary_file(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / "users.png"
    target.write_bytes(b"mine")
    out = tmp_path / "sizes.png"
    out.symlink_to(target)
    fig = plt.figure()
    try:
        save_figure(fig, out, dpi=20)
        with pytest.raises(ValueError):
            save_figure(fig, tmp_path / "sizes.unknownformat")
    finally:
        plt.close(fig)
    assert target.read_bytes() == b"mine"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not out.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sizes.png", "users.png"]


def test_a_lock_file_is_never_opened_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "a.lock").symlink_to(victim)
    with pytest.raises(OSError):
        open_lock_file(tmp_path / "a.lock")
    os.link(victim, tmp_path / "b.lock")
    with pytest.raises(OSError):
        open_lock_file(tmp_path / "b.lock")
    assert victim.read_text() == "keep"
    with open_lock_file(tmp_path / "c.lock") as lock:
        lock.write("1234")
    assert (tmp_path / "c.lock").read_text() == "1234"
