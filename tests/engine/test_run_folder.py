"""The checkpoint files a run keeps: links that survive the next save, the newest step files."""

from __future__ import annotations

import torch

from mrae.engine.checkpoint import save_checkpoint
from mrae.engine.run_folder import link_or_copy, prune_step_checkpoints, step_checkpoints


def test_link_or_copy_survives_replacing_the_source(tmp_path):
    save_checkpoint(tmp_path / "last.pth", {"step": 1})
    link_or_copy(tmp_path / "last.pth", tmp_path / "step_0000001.pth")
    save_checkpoint(tmp_path / "last.pth", {"step": 2})
    assert torch.load(tmp_path / "step_0000001.pth")["step"] == 1


def test_prune_keeps_the_newest_steps(tmp_path):
    for step in (100, 20, 3000, 400):
        (tmp_path / f"step_{step:07d}.pth").write_bytes(b"x")
    (tmp_path / "best.pth").write_bytes(b"x")
    assert [p.name for p in step_checkpoints(tmp_path)] == [
        "step_0000020.pth", "step_0000100.pth", "step_0000400.pth", "step_0003000.pth"
    ]
    prune_step_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth", "step_0000400.pth", "step_0003000.pth"]
    prune_step_checkpoints(tmp_path, keep_last=0)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pth"]
