"""What a training run's checkpoint holds, and how a run is set back to it.

:func:`checkpoint_state` is what :class:`~mrae.engine.trainer.Trainer` writes (through its
``state_dict``, which the checkpoint hook calls); :func:`restore_state` sets a trainer back to it on
``--resume``; :func:`load_init_weights` starts a model from another run's weights
(``--init-from``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mrae.engine import distributed
from mrae.engine.checkpoint import load_checkpoint, load_weights_strict, rng_state, set_rng_state
from mrae.engine.hooks import StepStats
from mrae.errors import ConfigError

if TYPE_CHECKING:
    from mrae.engine.trainer import Trainer

logger = logging.getLogger("mrae.engine.trainer")  # the trainer's messages, under its name


def checkpoint_state(trainer: Trainer) -> dict[str, Any]:
    """The checkpoint of ``trainer``'s run at this moment: weights, optimizer, scheduler and AMP
    scaler states, the step, every process's RNG state (a collective: every process calls it), the
    config, the classes, and the hooks' state (best metric, last evaluation, log window, clocks)."""
    from mrae.engine.config import to_dict

    rng = distributed.gather_objects(rng_state())
    state = trainer.state
    s = state.stats
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.use_amp else None,
        "step": trainer.step,
        "rng": rng,
        "config": to_dict(trainer.cfg),
        "class_names": list(trainer.train_set.class_names),
        "label_to_cat": dict(trainer.train_set.label_to_cat),
        "best_metric": state.best,
        "metrics": dict(state.metrics),
        "metrics_step": state.metrics_step,
        "log_window": {"sums": dict(s.sums), "count": s.count, "seconds": s.seconds},
        "train_seconds": s.train_seconds,
        "eval_seconds": s.eval_seconds,
    }


def restore_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """``trainer`` goes on from the checkpoint ``state`` (:func:`checkpoint_state`): weights,
    optimizer, scheduler, scaler, step, the hooks' state and this process's RNG (reseeded, with a
    warning, when the checkpoint was written by another number of processes)."""
    from mrae.engine.optim import check_same_optimizer

    good = trainer.state.good
    load_weights_strict(trainer.model, state["model"], f"--resume {good}", "this config's model",
                        "resume with the run's own config")
    check_same_optimizer(state.get("config") or {}, trainer.cfg.train, f"--resume {good}")
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.step = int(state["step"])
    trainer.state.best = state.get("best_metric")
    trainer.state.metrics = dict(state.get("metrics") or {})
    trainer.state.metrics_step = state.get("metrics_step")
    window = state.get("log_window") or {}
    trainer.state.stats = StepStats(sums=dict(window.get("sums", {})), count=int(window.get("count", 0)),
                                    seconds=float(window.get("seconds", 0.0)),
                                    train_seconds=float(state.get("train_seconds", 0.0)),
                                    eval_seconds=float(state.get("eval_seconds", 0.0)))
    states = state.get("rng") or []
    if len(states) == trainer.process.world_size:
        set_rng_state(states[trainer.process.rank])
    else:  # a different number of processes: the run goes on, not bit-identically
        if trainer.process.is_main:
            logger.warning(
                f"resume: the checkpoint has {len(states)} process RNG state(s), this run "
                f"{trainer.process.world_size}; the losses will not repeat the original run exactly"
            )
        seed_everything(trainer.cfg.train.seed + trainer.process.rank + trainer.step)


def load_init_weights(model: nn.Module, path: Path, class_names: list[str]) -> None:
    """``model`` takes the weights of another run's checkpoint (``--init-from``): same classes and
    same architecture, else a one-line :class:`ConfigError`."""
    state = load_checkpoint(path)
    names = state.get("class_names")
    if names is not None and list(names) != list(class_names):
        raise ConfigError(
            f"--init-from {path}: its classes {list(names)} are not the training data's "
            f"{class_names}; start from a run trained on the same classes"
        )
    load_weights_strict(model, state["model"], f"--init-from {path}", "this config's model",
                        "the backbone, head and out_channels must match")


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
