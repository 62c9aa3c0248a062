"""The checkpoint file: atomic writes, checksums, refusals of damaged or foreign files, stale
temporary files."""

from __future__ import annotations

import os

import pytest
import torch

from mrae.engine.checkpoint import (
    CheckpointDamaged,
    load_checkpoint,
    save_checkpoint,
    state_checksum,
)
from mrae.errors import ConfigError, MraeError


def test_save_is_atomic_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt" / "last.pth"
    save_checkpoint(path, {"model": {}, "config": {}, "step": 1})
    assert torch.load(path)["step"] == 1

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(MraeError, match="cannot write the checkpoint .disk full"):
        save_checkpoint(path, {"model": {}, "config": {}, "step": 2})
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pth"]  # no temporary file left


def test_unreadable_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read") as error:
        load_checkpoint(tmp_path / "garbage.pth")
    assert "\n" not in str(error.value)
    torch.save({"weights": 1}, tmp_path / "foreign.pth")
    with pytest.raises(ConfigError, match="not an mrae checkpoint"):
        load_checkpoint(tmp_path / "foreign.pth")


class _Payload:
    """A pickle that runs code when it is loaded (what a hostile checkpoint would hold)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": {}, "config": {}, "payload": _Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(ConfigError, match="refused") as error:
        load_checkpoint(tmp_path / "evil.pth")
    assert "\n" not in str(error.value)
    assert not marker.exists()


DEAD_PID = 99_999_999  # above Linux's largest pid (2**22): never a running process


def _weights_state() -> dict:
    """A checkpoint dict whose bytes are almost all one float tensor (1 MiB)."""
    torch.manual_seed(0)
    return {"model": {"w": torch.randn(512, 512), "b": torch.zeros(3)}, "config": {"name": "x"},
            "step": 4, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(2)}}}}


def test_the_checksum_covers_every_value_and_not_the_key_order():
    state = _weights_state()
    digest = state_checksum(state)
    assert digest.startswith("sha256:")
    assert state_checksum(dict(reversed(list(state.items())))) == digest
    assert state_checksum({**state, "checksum": "anything"}) == digest
    changed = _weights_state()
    changed["model"]["w"][100, 7] += 1e-3
    assert state_checksum(changed) != digest
    assert state_checksum({**state, "step": 5}) != digest
    moved = _weights_state()
    moved["optimizer"]["state"][0]["momentum_buffer"] = torch.ones(1, 2)  # same bytes, other shape
    assert state_checksum(moved) != digest


def test_a_checkpoint_with_4_kib_overwritten_is_refused_as_damaged(tmp_path):
    path = tmp_path / "last.pth"
    save_checkpoint(path, _weights_state())
    assert load_checkpoint(path)["step"] == 4
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096  # inside the tensor: NaN weights, a valid zip
    path.write_bytes(bytes(data))
    assert torch.isnan(torch.load(path, weights_only=True)["model"]["w"]).any()  # torch says nothing

    with pytest.raises(CheckpointDamaged) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "damaged" in message and "\n" not in message


def test_a_truncated_checkpoint_is_refused_as_damaged(tmp_path):
    path = tmp_path / "last.pth"
    save_checkpoint(path, _weights_state())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointDamaged) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "damaged" in message and "\n" not in message


def test_a_checkpoint_written_before_checksums_still_loads(tmp_path, caplog):
    state = _weights_state()
    torch.save(state, tmp_path / "old.pth")  # no "checksum" entry
    loaded = load_checkpoint(tmp_path / "old.pth")
    assert "checksum" not in loaded and torch.equal(loaded["model"]["w"], state["model"]["w"])
    warnings = [r.getMessage() for r in caplog.records]  # one line: it cannot be verified
    assert len(warnings) == 1 and "cannot be verified" in warnings[0] and "\n" not in warnings[0]


def test_non_finite_weights_are_refused_whatever_the_age(tmp_path):
    for checksum in (True, False):
        state = _weights_state()
        state["model"]["w"] = torch.full_like(state["model"]["w"], float("nan"))
        path = tmp_path / f"nan_{checksum}.pth"
        if checksum:
            save_checkpoint(path, state)
        else:
            torch.save(state, path)
        with pytest.raises(CheckpointDamaged, match="not finite"):
            load_checkpoint(path)


def test_a_save_removes_the_temporary_files_of_killed_saves_only(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = [folder / f".last.pth.{DEAD_PID}.tmp", folder / f".step_0000003.pth.{DEAD_PID}.tmp"]
    live = folder / f".best.pth.{os.getppid()}.tmp"  # a running process may still be writing it
    users = [folder / "notes.tmp", folder / ".last.pth.tmp", folder / f"x.{DEAD_PID}.tmp"]
    for path in [*dead, live, *users]:
        path.write_bytes(b"partial")
    save_checkpoint(folder / "last.pth", {"model": {}, "config": {}, "step": 1})
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["last.pth", live.name, *(p.name for p in users)]
    )


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import torch

    from mrae.engine import checkpoint
    from mrae.errors import MraeError

    path = tmp_path / "last.pth"
    checkpoint.save_checkpoint(path, {"step": 1, "model": {"w": torch.ones(2)}})
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(MraeError, match="No space left on device.*--resume"):
        checkpoint.save_checkpoint(path, {"step": 2, "model": {"w": torch.zeros(2)}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temporary file left


def test_a_full_disk_on_the_first_checkpoint_does_not_promise_an_earlier_one(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(MraeError, match="there is no earlier checkpoint") as error:
        save_checkpoint(tmp_path / "last.pth", _weights_state())
    assert "intact" not in str(error.value) and not (tmp_path / "last.pth").exists()
