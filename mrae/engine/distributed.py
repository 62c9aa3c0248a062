"""Several processes through torchrun: process group, device per process, and small collectives.

Launch: ``torchrun --nproc_per_node N -m mrae.cli train --config X.yaml`` (or
``python -m torch.distributed.run ...``). torchrun sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with ``WORLD_SIZE > 1`` :func:`setup` joins the group (NCCL on CUDA, gloo on
the CPU). Without torchrun everything here is a no-op for one process.

:func:`wrap` puts a model in DistributedDataParallel, which searches every step for parameters
that got no gradient only when the model has some (:func:`unused_parameters` tells, e.g. the
``single`` extractor at level 1 never runs layer2 and layer3 into its output).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mrae.device import resolve_device


@dataclass(frozen=True)
class Process:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> Process:
    """Join the torchrun process group when there is one; pick this process's device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. Under torchrun
            on CUDA each process uses ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device, key="train.device")
    if chosen.type == "cuda" and world_size > 1:
        chosen = torch.device(f"cuda:{local_rank}")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Process(rank=rank, world_size=world_size, device=chosen)


def cleanup() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def mean_over_processes(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over all processes (``values`` itself for one)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` for one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def unused_parameters(model: nn.Module, loss_of: Callable[[nn.Module], torch.Tensor]) -> list[str]:
    """The names of the trainable parameters (``requires_grad``) that get no gradient from
    ``loss_of(model)``, found by one forward and backward of a copy of ``model`` in training mode
    under forked RNG states: the model, its batch-norm statistics and the random streams are left
    as they were."""
    trial = copy.deepcopy(model)
    trial.train()
    for param in trial.parameters():
        param.grad = None
    devices = sorted({p.device.index or 0 for p in trial.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        loss_of(trial).backward()
    return [name for name, p in trial.named_parameters() if p.requires_grad and p.grad is None]


def wrap(model: nn.Module, process: Process, find_unused_parameters: bool) -> nn.Module:
    """``model`` in DistributedDataParallel (on this process's device); ``find_unused_parameters``
    only for a model that has parameters without a gradient (:func:`unused_parameters`), since the
    search costs time at every step. One process: ``model`` itself."""
    if not process.distributed:
        return model
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[process.device] if process.device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )
