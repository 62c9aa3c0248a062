"""Atomic writes (mrae.files): a failed write keeps the old file; only killed writes' temporary
files are removed."""

from __future__ import annotations

import json
import os

import pytest

import mrae.files
from mrae.files import remove_stale_temp_files, temp_path, write_json_atomic, write_text_atomic

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
