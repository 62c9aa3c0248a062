"""`mrae train --config X.yaml`: iteration-based training of a Faster R-CNN detector.

One step: a batch of ``train.batch_size`` images per process, ``model(images, targets)`` (the
torchvision loss dict), the sum of the losses back-propagated, SGD with momentum, the lr of
:mod:`mrae.engine.schedule`. Every ``train.eval_every`` steps (and after the last) the model is
evaluated on the val set (:func:`mrae.evaluation.evaluator.evaluate_model`), ``best.pth`` follows
``train.best_metric``; every ``train.checkpoint_every`` steps (and after the last) a checkpoint
is written atomically (:mod:`mrae.engine.checkpoint`).

``--resume`` continues a stopped run exactly: the data order and flips are a function of
``(seed, epoch, position)`` (:mod:`mrae.engine.sampler`) and the RNG states the model draws
from (RPN and RoI sampling) are restored, so on the CPU the losses are those of an uninterrupted
run. A damaged ``last.pth`` (it fails its checksum) is replaced by the newest intact
``step_*.pth``; a checkpoint is never written from weights that are not finite. ``--init-from
CKPT`` starts from another run's weights only (the paper's mixed training: template 1, then
template 2).

Several processes: ``torchrun --nproc_per_node N -m mrae.cli train --config X.yaml``
(DistributedDataParallel; each process reads its share of every epoch; rank 0 logs, evaluates
and writes the checkpoints).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from mrae.engine import distributed
from mrae.engine.checkpoint import (
    CheckpointDamaged,
    link_or_copy,
    load_checkpoint,
    load_weights_strict,
    prune_step_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
    step_checkpoints,
)
from mrae.engine.runlock import LOCK_NAME
from mrae.errors import ConfigError, MraeError
from mrae.files import remove_stale_temp_files, write_text_atomic


class TrainingDiverged(MraeError):
    """The loss, the gradient or the weights became NaN or infinite: the run stops without saving
    that state."""


def train(
    cfg: DictConfig, run_dir: str | Path, resume: bool = False, init_from: str | Path | None = None
) -> dict[str, float]:
    """Train the detector of ``cfg`` into ``run_dir``; return the final evaluation's metrics.

    Args:
        cfg: a config from :func:`mrae.engine.config.load_config`.
        run_dir: the run folder: ``config.yaml``, ``metrics.jsonl``, ``tb/``, ``checkpoints/``.
        resume: continue from ``run_dir/checkpoints/last.pth`` (the newest intact ``step_*.pth``
            when it is damaged; the config may raise ``train.steps``, not lower it below the
            checkpoint's step; the rest should be the run's).
        init_from: a checkpoint whose model weights (only) start this run; strict load.

    Returns:
        The metrics of the evaluation after the last step (see
        :func:`mrae.evaluation.evaluator.evaluate_model`); empty when there is no val set.

    Raises:
        ConfigError: a run already in ``run_dir`` without ``resume``, nothing (intact) to resume,
            a checkpoint past ``train.steps`` or that does not fit the model, another process
            writing ``run_dir``.
        TrainingDiverged: a non-finite loss, gradient or weights; ``last.pth`` stays the last
            good state.
    """
    from mrae.data.validate import check_image_files
    from mrae.engine.config import resolve_data
    from mrae.engine.runlock import RunLock

    process = distributed.setup(cfg.train.device)
    joined = process.distributed
    try:
        if not process.is_main:
            return _Run(cfg, Path(run_dir), process, resume, init_from).train()
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file, not a run folder; choose another --out")
        check_image_files(resolve_data(cfg))  # missing images named before the run folder exists
        created = not run_dir.exists()
        with RunLock(run_dir):  # one writer per run folder
            try:
                run = _Run(cfg, run_dir, process, resume, init_from)
            except BaseException:
                if created:  # a setup that failed (bad weights or settings) leaves no empty run behind
                    _remove_unused_run_dir(run_dir)
                raise
            return run.train()
    finally:
        if joined:
            distributed.cleanup()


class _Run:
    """The state of one training run; ``train()`` runs it to ``train.steps``."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        process: distributed.Process,
        resume: bool,
        init_from: str | Path | None,
    ) -> None:
        from mrae.data.coco import CocoDetection
        from mrae.data.sizes import shrink_warning
        from mrae.engine.config import resolve_data

        self.run_dir = run_dir
        self.process = process
        self.checkpoints = run_dir / "checkpoints"
        self.last = self.checkpoints / "last.pth"
        if resume and init_from is not None:
            raise ConfigError("--resume and --init-from exclude each other: a resumed run has its own weights")
        if resume and not self.last.is_file():
            raise ConfigError(f"--resume: {self.last} does not exist; there is no run to resume in {run_dir}")
        if not resume and self.last.is_file():
            raise ConfigError(
                f"{run_dir} already holds a run ({self.last}); pass --resume to continue it "
                "or --out RUN_DIR to start a new one"
            )

        # Rank 0 generates the synthetic data (if needed) while the others wait, then reuse it.
        # The same for the proxy-pretrained trunk (model.pretrained: synthetic).
        from mrae.engine.pretrain import resolve_pretrained

        if process.is_main:
            paths = resolve_data(cfg, progress=True)
            if not resume and init_from is None:
                resolve_pretrained(cfg, progress=True)
        distributed.barrier()
        if not process.is_main:
            paths = resolve_data(cfg, progress=False)
        if process.is_main:  # under the run lock: no other writer; remove killed writes' files
            for folder in (run_dir, self.checkpoints):
                remove_stale_temp_files(folder, include_own=True)
        self.train_set = CocoDetection(
            paths["train_images"], paths["train_annotations"], train=True, flip=False
        )
        self.val_set = None
        if paths["val_annotations"] is not None and process.is_main:
            self.val_set = CocoDetection(paths["val_images"], paths["val_annotations"], train=False)
        self.has_val = paths["val_annotations"] is not None
        m = cfg.model
        if process.is_main and (note := shrink_warning(self.train_set.coco.dataset, m.min_size, m.max_size, m.fixed_size)):
            print(f"mrae train: {note}", file=sys.stderr)  # the resize makes the objects tiny

        self.cfg = _with_num_classes(cfg, self.train_set.num_classes)
        t = self.cfg.train
        self.use_amp = bool(t.amp) and process.device.type == "cuda"

        self.good: Path | None = None  # the newest checkpoint known to hold finite, intact weights
        state = self._resume_state() if resume else None
        if state is not None and int(state["step"]) > t.steps:
            raise ConfigError(
                f"--resume {self.good}: the checkpoint is at step {int(state['step'])}, past "
                f"train.steps={t.steps}; resume with train.steps >= {int(state['step'])} (the run's "
                "own config) or evaluate the checkpoint with mrae eval"
            )
        _seed_everything(t.seed)  # the same initial weights in every process
        self.model = self._build_model(pretrained=not resume and init_from is None)
        if init_from is not None:
            self._load_init_weights(Path(init_from))
        self.model.to(process.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            self.params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay
        )
        from mrae.engine.schedule import build_scheduler

        self.scheduler = build_scheduler(
            self.optimizer, list(t.milestones), t.gamma, t.warmup_steps, t.warmup_factor
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.best: float | None = None
        self.metrics: dict[str, float] = {}
        self.metrics_step: int | None = None
        self.window: dict[str, float] = {}
        self.window_count = 0
        self.train_seconds = 0.0  # time in training steps (data wait included), not evaluations
        self.window_seconds = 0.0
        if state is not None:
            self._restore(state)
        else:
            _seed_everything(t.seed + process.rank)

        if process.is_main:
            self._write_config(resume)

    # -------------------------------------------------------------------------------- setup

    def _build_model(self, pretrained: bool) -> nn.Module:
        from mrae.engine.config import to_dict
        from mrae.engine.pretrain import resolve_pretrained
        from mrae.modeling.detector import build_detector

        kwargs = to_dict(self.cfg.model)
        if not pretrained:  # the weights come from a checkpoint: its structure, no download
            kwargs["weights_later"] = True
        else:
            kwargs["pretrained"] = resolve_pretrained(self.cfg, progress=False)
        return build_detector(**kwargs)

    def _resume_state(self) -> dict[str, Any]:
        """``last.pth``, or when it is damaged the newest intact ``step_*.pth``, which then replaces
        ``last.pth`` (said in one line)."""
        try:
            state = load_checkpoint(self.last)
            self.good = self.last
            return state
        except CheckpointDamaged:
            pass
        for candidate in reversed(step_checkpoints(self.checkpoints)):
            try:
                state = load_checkpoint(candidate)
            except CheckpointDamaged:
                continue
            if self.process.is_main:
                link_or_copy(candidate, self.last)  # eval and the study read last.pth
                print(f"resume: {self.last} is damaged; resuming from {candidate} (step "
                      f"{int(state['step'])}), the newest intact step checkpoint, which replaces it",
                      file=sys.stderr)
            self.good = candidate
            return state
        raise ConfigError(
            f"--resume: {self.last} is damaged and no step_*.pth in {self.checkpoints} is intact; "
            "there is nothing to resume from: start the run again in a new --out folder"
        )

    def _load_init_weights(self, path: Path) -> None:
        state = load_checkpoint(path)
        names = state.get("class_names")
        if names is not None and list(names) != list(self.train_set.class_names):
            raise ConfigError(
                f"--init-from {path}: its classes {list(names)} are not the training data's "
                f"{self.train_set.class_names}; start from a run trained on the same classes"
            )
        load_weights_strict(self.model, state["model"], f"--init-from {path}", "this config's model",
                            "the backbone, head and out_channels must match")

    def _restore(self, state: dict[str, Any]) -> None:
        load_weights_strict(self.model, state["model"], f"--resume {self.good}", "this config's model",
                            "resume with the run's own config")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.best = state.get("best_metric")
        self.metrics = dict(state.get("metrics") or {})
        self.metrics_step = state.get("metrics_step")
        window = state.get("log_window") or {}
        self.window = dict(window.get("sums", {}))
        self.window_count = int(window.get("count", 0))
        self.window_seconds = float(window.get("seconds", 0.0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        states = state.get("rng") or []
        if len(states) == self.process.world_size:
            set_rng_state(states[self.process.rank])
        else:  # a different number of processes: the run goes on, not bit-identically
            if self.process.is_main:
                print(
                    f"resume: the checkpoint has {len(states)} process RNG state(s), this run "
                    f"{self.process.world_size}; the losses will not repeat the original run exactly",
                    file=sys.stderr,
                )
            _seed_everything(self.cfg.train.seed + self.process.rank + self.step)

    def _write_config(self, resume: bool) -> None:
        from mrae.engine.config import to_yaml

        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "config.yaml"
        text = to_yaml(self.cfg)
        if resume and path.is_file() and path.read_text() != text:
            print(f"resume: the config differs from the run's saved {path}; saving the new one",
                  file=sys.stderr)
        write_text_atomic(path, text)

    # -------------------------------------------------------------------------------- loop

    def train(self) -> dict[str, float]:
        from mrae.data.augment import AugmentByKey
        from mrae.data.coco import build_loader
        from mrae.engine.metrics_log import MetricsLog
        from mrae.engine.sampler import ResumableSampler

        t, process = self.cfg.train, self.process
        model: nn.Module = self.model
        if process.distributed:
            model = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[process.device] if process.device.type == "cuda" else None,
                # single-level extractors leave the other levels' layers without gradients
                find_unused_parameters=True,
            )
        crop = self.cfg.data.train_crop
        sampler = ResumableSampler(
            len(self.train_set), t.seed, flip=self.cfg.data.flip, rank=process.rank,
            world_size=process.world_size, start=self.step * t.batch_size, crop=crop is not None,
        )
        m = self.cfg.model
        view = AugmentByKey(self.train_set, crop=crop, min_size=m.min_size, max_size=m.max_size)
        loader = build_loader(
            view, t.batch_size, shuffle=False, workers=self.cfg.data.workers,
            seed=t.seed + process.rank, sampler=sampler, pin_memory=process.device.type == "cuda",
        )
        self.log = MetricsLog(self.run_dir, resume_step=self.step if self.step > 0 else None) \
            if process.is_main else None
        bar = tqdm(
            total=t.steps, initial=self.step, desc=f"train {self.cfg.name}", unit="step",
            disable=None if process.is_main else True, dynamic_ncols=True,
        )
        batches = iter(loader)
        model.train()
        try:
            while self.step < t.steps:
                start = time.perf_counter()
                images, targets = next(batches)
                losses = self._train_step(model, images, targets)
                elapsed = time.perf_counter() - start
                self.train_seconds += elapsed
                self.window_seconds += elapsed
                self.step += 1
                self._accumulate(losses)
                bar.update()
                bar.set_postfix(loss=f"{losses['loss']:.3f}", lr=f"{self._lr():.2g}", refresh=False)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    self._log_window()
                improved = False
                if self.has_val and ((t.eval_every and self.step % t.eval_every == 0) or self.step == t.steps):
                    improved = self._evaluate()
                saved = False
                if (t.checkpoint_every and self.step % t.checkpoint_every == 0) or self.step == t.steps:
                    self._checkpoint()
                    saved = True
                if improved:
                    self._save_best(saved)
            if self.has_val and self.metrics_step != self.step:  # resumed a finished run
                if self._evaluate():
                    self._save_best(False)
                self._checkpoint()
        finally:
            bar.close()
            if self.log is not None:
                self.log.close()
        return dict(self.metrics)

    def _train_step(self, model: nn.Module, images: list, targets: list) -> dict[str, float]:
        device = self.process.device
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [
            {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in target.items()}
            for target in targets
        ]
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.use_amp):
            loss_dict = model(images, targets)
        loss = sum(loss_dict.values())
        names = ["loss", *loss_dict]
        values = torch.stack([loss.detach(), *(v.detach() for v in loss_dict.values())]).float()
        values = distributed.mean_over_processes(values).cpu().tolist()
        losses = dict(zip(names, values, strict=True))
        if not all(math.isfinite(v) for v in values):
            self._diverged("loss", losses)

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.train.clip_grad_norm
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip if clip else math.inf))
        # With AMP an overflow is expected now and then: the scaler skips that step and lowers
        # its scale. Without it a non-finite gradient would poison the weights.
        if not self.use_amp and not math.isfinite(grad_norm):
            self._diverged("gradient norm", {**losses, "grad_norm": grad_norm})
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        losses["grad_norm"] = grad_norm
        return losses

    def _diverged(self, what: str, values: Mapping[str, float] | str, step: int | None = None) -> NoReturn:
        """Stop the run: ``what`` (at ``step``, default the step being taken) is not finite;
        ``values`` shows the numbers (a mapping) or says where (a string)."""
        shown = values if isinstance(values, str) else ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        verb = "are" if what == "weights" else "is"
        kept = f"the last good checkpoint is {self.good}" if self.good is not None else "no checkpoint was written"
        raise TrainingDiverged(
            f"training diverged at step {self.step + 1 if step is None else step}: the {what} {verb} "
            f"not finite ({shown}); {kept}; lower train.lr, add train.warmup_steps or set "
            "train.clip_grad_norm"
        )

    def _check_finite_weights(self) -> None:
        """Stop with :class:`TrainingDiverged` when a weight or buffer is NaN or infinite (before
        anything evaluates or saves them)."""
        floats = [(k, v) for k, v in self.model.state_dict().items() if v.is_floating_point()]
        if not floats:
            return
        finite = torch.stack([torch.isfinite(v).all() for _, v in floats]).cpu()
        if bool(finite.all()):
            return
        name, value = floats[int((~finite).nonzero()[0])]
        bad = int((~torch.isfinite(value)).sum())
        self._diverged("weights", f"{name}: {bad} of {value.numel()} values", step=self.step)

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _accumulate(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.window[name] = self.window.get(name, 0.0) + value
        self.window_count += 1

    def _log_window(self) -> None:
        if self.log is not None and self.window_count:
            means = {k: v / self.window_count for k, v in self.window.items()}
            step_seconds = self.window_seconds / self.window_count
            timing = {
                "step_seconds": step_seconds,
                "images_per_s": self.cfg.train.batch_size * self.process.world_size / step_seconds,
                "train_seconds": self.train_seconds,
            }
            self.log.log_train(self.step, means, self._lr(), timing)
            if not sys.stderr.isatty():  # no progress bar (a log file, a batch job): a plain line
                left = (self.cfg.train.steps - self.step) * step_seconds
                print(f"step {self.step}/{self.cfg.train.steps}  loss {means['loss']:.4f}  "
                      f"lr {self._lr():.3g}  {timing['images_per_s']:.2f} img/s  "
                      f"training time left {left / 60:.1f} min", file=sys.stderr, flush=True)
        self.window, self.window_count, self.window_seconds = {}, 0, 0.0

    # ------------------------------------------------------------------- eval and checkpoints

    def _evaluate(self) -> bool:
        """Evaluate on rank 0 (the others wait); True when ``train.best_metric`` improved."""
        from mrae.evaluation.evaluator import evaluate_model

        self._check_finite_weights()
        distributed.barrier()
        metrics = None
        if self.process.is_main:
            metrics, _ = evaluate_model(
                self.model, self.val_set, device=self.process.device,
                max_images=self.cfg.eval.max_images, progress=False,
            )
            self.log.log_eval(self.step, metrics, train_seconds=self.train_seconds)
            shown = ", ".join(f"{k} {100 * metrics[k]:.1f}" for k in ("AP", "AP50", "AR100"))
            tqdm.write(f"step {self.step}: {shown}", file=sys.stderr)
        metrics = distributed.broadcast_object(metrics)
        self.model.train()
        self.metrics, self.metrics_step = metrics, self.step
        value = metrics.get(self.cfg.train.best_metric, math.nan)
        if math.isnan(value) or (self.best is not None and value <= self.best):
            return False
        self.best = float(value)
        return True

    def _state(self) -> dict[str, Any]:
        from mrae.engine.config import to_dict

        self._check_finite_weights()  # never written as a good state; every process stops alike
        rng = distributed.gather_objects(rng_state())
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else None,
            "step": self.step,
            "rng": rng,
            "config": to_dict(self.cfg),
            "class_names": list(self.train_set.class_names),
            "label_to_cat": dict(self.train_set.label_to_cat),
            "best_metric": self.best,
            "metrics": dict(self.metrics),
            "metrics_step": self.metrics_step,
            "log_window": {"sums": dict(self.window), "count": self.window_count,
                           "seconds": self.window_seconds},
            "train_seconds": self.train_seconds,
        }

    def _checkpoint(self) -> None:
        state = self._state()  # a collective: every process takes part
        if self.process.is_main:
            save_checkpoint(self.last, state)
            keep = self.cfg.train.keep_last
            if keep > 0:
                link_or_copy(self.last, self.checkpoints / f"step_{self.step:07d}.pth")
            prune_step_checkpoints(self.checkpoints, keep)
        distributed.barrier()
        self.good = self.last

    def _save_best(self, just_saved: bool) -> None:
        best = self.checkpoints / "best.pth"
        if just_saved:
            if self.process.is_main:
                link_or_copy(self.last, best)
            return
        state = self._state()
        if self.process.is_main:
            save_checkpoint(best, state)


def _remove_unused_run_dir(run_dir: Path) -> None:
    """Remove a run folder this call created, if it holds nothing but the lock and empty folders."""
    (run_dir / LOCK_NAME).unlink(missing_ok=True)
    for folder in sorted((p for p in run_dir.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only empty folders go
    with contextlib.suppress(OSError):
        run_dir.rmdir()


def _with_num_classes(cfg: DictConfig, data_classes: int) -> DictConfig:
    """A copy of ``cfg`` whose ``model.num_classes`` is filled in (data classes + background)."""
    cfg = cfg.copy()
    wanted = data_classes + 1
    if cfg.model.num_classes is None:
        cfg.model.num_classes = wanted
    elif cfg.model.num_classes < wanted:
        raise ConfigError(
            f"model.num_classes={cfg.model.num_classes} is too small for the training data's "
            f"{data_classes} classes; it counts the background too: set {wanted} or null"
        )
    return cfg


def _seed_everything(seed: int) -> None:
    import random

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# ---------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/synth/mrae_t2.yaml")
    parser.add_argument(
        "overrides", nargs="*", default=[], metavar="KEY=VALUE",
        help="config overrides after the config, e.g. train.steps=100 model.template=1",
    )
    parser.add_argument("--out", help="run folder (default: runs/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    parser.add_argument(
        "--init-from", metavar="CKPT",
        help="start from these model weights only (e.g. runs/mrae_t1/checkpoints/last.pth)",
    )


def main(args: argparse.Namespace) -> int:
    from mrae.engine.config import load_config
    from mrae.evaluation.evaluator import TABLE_HEADER, markdown_row

    cfg = load_config(args.config, args.overrides)
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    metrics = train(cfg, run_dir, resume=args.resume, init_from=args.init_from)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone reports
        if metrics:
            print(TABLE_HEADER)
            print(markdown_row(f"{cfg.name} (step {cfg.train.steps})", metrics))
        print(f"run folder: {run_dir}   checkpoints: {run_dir / 'checkpoints'}")
    return 0
