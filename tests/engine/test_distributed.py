"""Two CPU processes through torchrun: DistributedDataParallel, sharded data, rank-0 checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from mrae.data.synth import generate
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.metrics_log import read_metrics
from mrae.engine.sampler import ResumableSampler

TRAIN = """
train:
  steps: 2
  batch_size: 1
  lr: 0.01
  log_every: 1
  device: cpu
eval:
  max_images: 1
"""


def test_two_cpu_processes_train_and_checkpoint(tmp_path, tiny_sections):
    paths = generate(tmp_path / "data", train_images=4, val_images=1, width=128, height=96,
                     workers=0, progress=False)
    config = tmp_path / "ddp.yaml"
    config.write_text(tiny_sections("single", paths) + TRAIN)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mrae.cli", "train", "--config", str(config), "--out", str(run)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run folder:") == 1  # rank 0 alone reports

    state = load_checkpoint(run / "checkpoints" / "last.pth")
    assert state["step"] == 2
    assert len(state["rng"]) == 2  # one RNG state per process, for an exact resume
    assert not any(k.startswith("module.") for k in state["model"])  # the plain model's weights
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    records = read_metrics(run)
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert [r["step"] for r in records if "eval" in r] == [2]
    assert (run / "checkpoints" / "best.pth").is_file()

    # The two processes read disjoint halves of each epoch.
    shards = [ResumableSampler(4, seed=0, rank=r, world_size=2).epoch(0)[0] for r in (0, 1)]
    assert sorted([*shards[0], *shards[1]]) == [0, 1, 2, 3]
