"""The Trainer: a run's setup (data, model, optimizer, lr schedule, resume) and a short loop of hooks.

``Trainer(cfg, run_dir, process, resume, init_from)`` sets the run up (nothing trains yet);
:meth:`Trainer.train` then calls every hook's ``before_train``, for each step ``before_step``,
:meth:`Trainer.run_step` (one batch: forward, losses, backward, optimizer and lr step) and
``after_step``, and at the end ``after_train`` (:mod:`mrae.engine.hooks`). Logging, evaluation,
checkpoints and timing are hooks (:meth:`Trainer.build_hooks`); the trainer and its hooks share one
narrow object, the run's :class:`~mrae.engine.hooks.TrainState` (``trainer.state``), and a hook
gets whatever else it needs in its constructor (the evaluation as :meth:`Trainer.evaluate`, the
checkpoint's contents as :meth:`Trainer.state_dict`).

A subclass may replace :meth:`~Trainer.build_model`, :meth:`~Trainer.build_optimizer`,
:meth:`~Trainer.build_scheduler`, :meth:`~Trainer.build_train_loader` or
:meth:`~Trainer.build_hooks`; run it with ``mrae.engine.train.train(cfg, run_dir,
trainer_class=MyTrainer)``, which also takes the run lock and checks the inputs first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import torch
from omegaconf import DictConfig
from torch import nn

from mrae.engine import distributed, run_folder
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.hooks import (
    PARTIAL,
    Checkpointer,
    EvalHook,
    ExpectedTime,
    HookBase,
    MetricsWriter,
    StepStats,
    StepTimer,
    TrainState,
)
from mrae.engine.model import load_weights_strict
from mrae.engine.optim import build_optimizer
from mrae.engine.rng import rng_state, seed_everything, set_rng_state
from mrae.engine.stall import StallWatch
from mrae.errors import ConfigError, TrainingDiverged
from mrae.files import remove_stale_temp_files

__all__ = ["Trainer", "TrainingDiverged", "detector_dry_loss"]

logger = logging.getLogger(__name__)


class Trainer:
    """One training run of ``cfg`` in ``run_dir``, set up to train from step 0, from its last
    checkpoint (``resume``) or from another run's weights (``init_from``).

    Raises:
        ConfigError: see :func:`mrae.engine.train.train`.
    """

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: str | Path,
        process: distributed.Process,
        resume: bool = False,
        init_from: str | Path | None = None,
    ) -> None:
        from mrae.data.coco import CocoDetection
        from mrae.data.sizes import shrink_warning
        from mrae.engine.config import resolve_data, with_num_classes
        from mrae.engine.pretrain import resolve_pretrained
        from mrae.engine.schedule import schedule_warning

        self.run_dir = run_dir = Path(run_dir)
        self.process = process
        self.last = run_folder.last_checkpoint(run_dir)
        self.checkpoints = self.last.parent
        run_folder.check_start(run_dir, resume, init_from)

        # Rank 0 generates the synthetic data (if needed) while the others wait, then reuse it.
        # The same for the proxy-pretrained trunk (model.pretrained: synthetic), resolved once
        # per process; a run that starts from a checkpoint reads no pretrained weights.
        fresh = not resume and init_from is None
        #: the trunk's starting weights as build_model reads them (None: they come from a checkpoint)
        self.pretrained: str | None = None
        if process.is_main:
            paths = resolve_data(cfg, progress=True)
            if fresh:
                self.pretrained = resolve_pretrained(cfg, progress=True)
        distributed.barrier()
        if not process.is_main:
            paths = resolve_data(cfg, progress=False)
            if fresh:
                self.pretrained = resolve_pretrained(cfg, progress=False)
        if process.is_main:  # under the run lock: no other writer; remove killed writes' files
            for folder in (run_dir, self.checkpoints):
                remove_stale_temp_files(folder, include_own=True)
        self.train_set = CocoDetection(
            paths["train_images"], paths["train_annotations"], train=True
        )
        self.val_set = None
        if paths["val_annotations"] is not None and process.is_main:
            self.val_set = CocoDetection(paths["val_images"], paths["val_annotations"], train=False)
        self.has_val = paths["val_annotations"] is not None
        self.group_by = _val_groups(cfg, self.val_set)  # an expression matching no val image fails here
        m = cfg.model
        tile = cfg.data.train_crop if cfg.data.crop_scale == "tile" else None  # the scale seen
        if process.is_main and (note := shrink_warning(self.train_set.coco.dataset, m.min_size,
                                                       m.max_size, m.fixed_size, tile=tile)):
            logger.warning(f"mrae train: {note}")  # the resize makes the objects tiny

        self.cfg = with_num_classes(cfg, self.train_set.num_classes)
        t = self.cfg.train
        self.use_amp = bool(t.amp) and process.device.type == "cuda"
        # what the hooks see of the run (mrae.engine.hooks.TrainState)
        self.state = TrainState(max_steps=int(t.steps), is_main=process.is_main)

        saved = None  # the checkpoint resumed from
        if resume:
            saved, self.state.good = run_folder.resume_state(run_dir, process.is_main)
        if saved is not None and int(saved["step"]) > t.steps:
            raise ConfigError(
                f"--resume {self.state.good}: the checkpoint is at step {int(saved['step'])}, past "
                f"train.steps={t.steps}; resume with train.steps >= {int(saved['step'])} (the run's "
                "own config) or evaluate the checkpoint with mrae eval"
            )
        seed_everything(t.seed)  # the same initial weights in every process
        self.model = self.build_model(weights_later=not fresh)
        if init_from is not None:
            self.load_init_weights(Path(init_from))
        self.model.to(process.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self.build_optimizer(self.model)
        self.scheduler = self.build_scheduler(self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        if saved is not None:
            self.load_state_dict(saved)
        else:
            seed_everything(t.seed + process.rank)

        # after every check that can refuse the run: a refusal stays one line
        if process.is_main and (note := schedule_warning(int(t.steps), list(t.milestones), int(t.warmup_steps))):
            logger.warning(f"mrae train: {note}")
        if process.is_main:
            run_folder.write_config(run_dir, self.cfg, resume)
        self.hooks: list[HookBase] = []
        self.register_hooks(self.build_hooks())

    # ------------------------------------------------------------------ what a subclass replaces

    def build_model(self, weights_later: bool) -> nn.Module:
        """The detector of ``self.cfg.model`` (:func:`mrae.engine.model.build_model`, as every
        loader builds it).

        Args:
            weights_later: the weights come from a checkpoint afterwards (resume, ``--init-from``):
                build the structure of ``model.pretrained`` without reading its weights. False:
                the trunk starts from ``self.pretrained`` (``model.pretrained`` resolved once,
                :func:`mrae.engine.pretrain.resolve_pretrained`).
        """
        from mrae.engine.model import build_model

        return build_model(self.cfg, pretrained=None if weights_later else self.pretrained)

    def build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """``train.optimizer`` over the model's trainable parameters (:mod:`mrae.engine.optim`)."""
        return build_optimizer(model, self.cfg.train)

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """The lr of :mod:`mrae.engine.schedule`: warm-up, then ``gamma`` at each milestone."""
        from mrae.engine.schedule import build_scheduler

        t = self.cfg.train
        return build_scheduler(optimizer, list(t.milestones), t.gamma, t.warmup_steps, t.warmup_factor)

    def build_train_loader(self) -> Iterable[tuple[list, list]]:
        """Batches of ``(images, targets)`` from ``self.step`` on: this process's share of each
        epoch, in an order and with flips and crops that are a function of the seed and the
        position (:class:`mrae.engine.sampler.ResumableSampler`), so a resumed run sees the
        batches the uninterrupted run would have."""
        from mrae.data.augment import AugmentByKey
        from mrae.data.coco import build_loader
        from mrae.engine.sampler import ResumableSampler

        t, process = self.cfg.train, self.process
        crop = self.cfg.data.train_crop
        sampler = ResumableSampler(
            len(self.train_set), t.seed, flip=self.cfg.data.flip, rank=process.rank,
            world_size=process.world_size, start=self.step * t.batch_size, crop=crop is not None,
        )
        view = AugmentByKey.from_config(self.train_set, self.cfg)
        return build_loader(
            view, t.batch_size, shuffle=False, workers=self.cfg.data.workers,
            seed=t.seed + process.rank, sampler=sampler, pin_memory=process.device.type == "cuda",
        )

    def build_hooks(self) -> list[HookBase]:
        """The default hooks, in the order they run (see :mod:`mrae.engine.hooks`): each gets
        what it needs of the trainer here, in its constructor, and the run's state when it is
        registered."""
        t = self.cfg.train
        return [
            StepTimer(),
            ExpectedTime(t.eval_every, self.has_val),
            MetricsWriter(t.log_every, self.cfg.name, t.batch_size * self.process.world_size),
            StallWatch(),
            EvalHook(t.eval_every, self.evaluate if self.has_val else None, t.best_metric),
            Checkpointer(t.checkpoint_every, t.keep_last, self.last, self.state_dict),
        ]

    def register_hooks(self, hooks: Iterable[HookBase]) -> None:
        """Append ``hooks`` (they run after the ones registered before), each with the run's
        :class:`~mrae.engine.hooks.TrainState` as ``hook.state``."""
        for hook in hooks:
            hook.state = self.state
            self.hooks.append(hook)

    # ------------------------------------------------------------- the run's state, for short

    @property
    def step(self) -> int:
        """Steps done (``self.state.step``)."""
        return self.state.step

    @step.setter
    def step(self, value: int) -> None:
        self.state.step = value

    @property
    def max_steps(self) -> int:
        """``train.steps`` (``self.state.max_steps``)."""
        return self.state.max_steps

    # ------------------------------------------------------------------------------- the loop

    def train(self) -> dict[str, float]:
        """Train to ``train.steps``; return the last evaluation's metrics (empty without val set)."""
        from mrae.engine.metrics_log import MetricsLog

        self.model_to_train = self._parallel_model()
        loader = self.build_train_loader()
        s = self.state
        if self.process.is_main:
            s.log = MetricsLog(self.run_dir, resume_step=self.step if self.step > 0 else None)
        try:
            self._batches: Iterator[tuple[list, list]] = iter(loader)
            self.model.train()
            s.lr = self.lr
            self._call("before_train")
            while self.step < self.max_steps:
                self._call("before_step")
                s.losses = self.run_step()
                s.lr = self.lr
                self.step += 1
                self._call("after_step")
            self._call("after_train")
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under `mrae train`
            if self.process.is_main:
                logger.warning(f"mrae train: interrupted at step {self.step} of {self.max_steps}; "
                               f"continue from the last checkpoint in {self.checkpoints} with --resume")
            raise
        finally:
            self._call("close")
            if s.log is not None:
                s.log.close()
        return dict(s.metrics)

    def run_step(self) -> dict[str, float]:
        """One optimizer step on the next batch; returns the losses (mean over the processes):
        ``loss`` (their sum, which is back-propagated), each part, and ``grad_norm``."""
        images, targets = next(self._batches)
        device = self.process.device
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [
            {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in target.items()}
            for target in targets
        ]
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.use_amp):
            loss_dict = self.model_to_train(images, targets)
        loss = sum(loss_dict.values())
        names = ["loss", *loss_dict]
        values = torch.stack([loss.detach(), *(v.detach() for v in loss_dict.values())]).float()
        values = distributed.mean_over_processes(values).cpu().tolist()
        losses = dict(zip(names, values, strict=True))
        if not all(math.isfinite(v) for v in values):
            self.diverged("loss", losses)

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.cfg.train.clip_grad_norm
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip if clip else math.inf))
        # With AMP an overflow is expected now and then: the scaler skips that step and lowers
        # its scale. Without it a non-finite gradient would poison the weights.
        if not self.use_amp and not math.isfinite(grad_norm):
            self.diverged("gradient norm", {**losses, "grad_norm": grad_norm})
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        losses["grad_norm"] = grad_norm
        return losses

    @property
    def lr(self) -> float:
        """The lr of the next step (the first parameter group's)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def diverged(self, what: str, values: Mapping[str, float] | str, step: int | None = None) -> NoReturn:
        """Stop the run: ``what`` (at ``step``, default the step being taken) is not finite;
        ``values`` shows the numbers (a mapping) or says where (a string)."""
        shown = values if isinstance(values, str) else ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        verb = "are" if what == "weights" else "is"
        good = self.state.good
        kept = f"the last good checkpoint is {good}" if good is not None else "no checkpoint was written"
        raise TrainingDiverged(
            f"training diverged at step {self.step + 1 if step is None else step}: the {what} {verb} "
            f"not finite ({shown}); {kept}; lower train.lr, add train.warmup_steps or set "
            "train.clip_grad_norm"
        )

    def check_finite_weights(self) -> None:
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
        self.diverged("weights", f"{name}: {bad} of {value.numel()} values", step=self.step)

    def evaluate(self) -> dict[str, float]:
        """The val set's metrics now, in every process (a collective): the weights are checked
        first, rank 0 runs :func:`mrae.evaluation.evaluator.evaluate_model` while the others
        wait, and sends them the result; the model is back in training mode after. The
        :class:`~mrae.engine.hooks.EvalHook`'s evaluation.

        On the first ``eval.max_images`` val images (all when null); before the last step on only
        the first ``eval.curve_max_images`` when that is fewer (the metrics then say
        ``partial: 1.0``). ``images`` is the number evaluated."""
        from mrae.evaluation.evaluator import evaluate_model

        self.check_finite_weights()
        distributed.barrier()
        metrics = None
        if self.process.is_main:
            everything = len(self.val_set)
            final = min(everything, self.cfg.eval.max_images or everything)
            curve = self.cfg.eval.curve_max_images
            images = min(final, curve) if curve is not None and self.step < self.max_steps else final
            metrics, _ = evaluate_model(self.model, self.val_set, device=self.process.device,
                                        max_images=images, progress=False,
                                        max_dets=tuple(self.cfg.eval.max_dets), group_by=self.group_by)
            metrics["images"] = float(images)
            if images < final:
                metrics[PARTIAL] = 1.0
        metrics = distributed.broadcast_object(metrics)
        self.model.train()
        return metrics

    # --------------------------------------------------------------- the checkpoint's contents

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint of this moment (:mod:`mrae.engine.checkpoint` lists its entries):
        weights, optimizer, scheduler and AMP scaler states, the step, every process's RNG state
        (a collective: every process calls it), the config, the classes, and the hooks' state
        (best metric, last evaluation, log window, clocks). The weights are checked first, so a
        checkpoint never holds weights that are not finite."""
        from mrae.engine.config import to_dict

        self.check_finite_weights()  # never written as a good state; every process stops alike
        rng = distributed.gather_objects(rng_state())
        state, s = self.state, self.state.stats
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
            "best_metric": state.best,
            "metrics": dict(state.metrics),
            "metrics_step": state.metrics_step,
            "log_window": {"sums": dict(s.sums), "count": s.count, "seconds": s.seconds},
            "train_seconds": s.train_seconds,
            "eval_seconds": s.eval_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from the checkpoint ``state`` (:meth:`state_dict`, on ``--resume``): weights,
        optimizer, scheduler, scaler, step, the hooks' state and this process's RNG (reseeded,
        with a warning, when the checkpoint was written by another number of processes)."""
        from mrae.engine.optim import check_same_optimizer

        good = self.state.good
        load_weights_strict(self.model, state["model"], f"--resume {good}", "this config's model",
                            "resume with the run's own config")
        check_same_optimizer(state.get("config") or {}, self.cfg.train, f"--resume {good}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.state.best = state.get("best_metric")
        self.state.metrics = dict(state.get("metrics") or {})
        self.state.metrics_step = state.get("metrics_step")
        window = state.get("log_window") or {}
        self.state.stats = StepStats(sums=dict(window.get("sums", {})), count=int(window.get("count", 0)),
                                     seconds=float(window.get("seconds", 0.0)),
                                     train_seconds=float(state.get("train_seconds", 0.0)),
                                     eval_seconds=float(state.get("eval_seconds", 0.0)))
        states = state.get("rng") or []
        process = self.process
        if len(states) == process.world_size:
            set_rng_state(states[process.rank])
        else:  # a different number of processes: the run goes on, not bit-identically
            if process.is_main:
                logger.warning(
                    f"resume: the checkpoint has {len(states)} process RNG state(s), this run "
                    f"{process.world_size}; the losses will not repeat the original run exactly"
                )
            seed_everything(self.cfg.train.seed + process.rank + self.step)

    def load_init_weights(self, path: Path) -> None:
        """The model takes the weights of another run's checkpoint (``--init-from``): same classes
        and same architecture, else a one-line :class:`ConfigError`."""
        state = load_checkpoint(path)
        names, class_names = state.get("class_names"), list(self.train_set.class_names)
        if names is not None and list(names) != class_names:
            raise ConfigError(
                f"--init-from {path}: its classes {list(names)} are not the training data's "
                f"{class_names}; start from a run trained on the same classes"
            )
        load_weights_strict(self.model, state["model"], f"--init-from {path}", "this config's model",
                            "the backbone, head and out_channels must match")

    def _call(self, method: str) -> None:
        for hook in self.hooks:
            getattr(hook, method)()

    def _parallel_model(self) -> nn.Module:
        """The model the steps run: DistributedDataParallel under torchrun, which looks for
        parameters without a gradient at every step only when this model has some (one dry
        forward and backward tells, :func:`mrae.engine.distributed.unused_parameters`)."""
        if not self.process.distributed:
            return self.model
        unused = distributed.unused_parameters(self.model, detector_dry_loss)
        if unused and self.process.is_main:
            logger.debug(f"{len(unused)} trainable parameters get no gradient (e.g. {unused[0]}): "
                         "DistributedDataParallel(find_unused_parameters=True)")
        return distributed.wrap(self.model, self.process, find_unused_parameters=bool(unused))

def detector_dry_loss(model: nn.Module) -> torch.Tensor:
    """The summed training losses of a torchvision detector on one plain 64 x 64 px image with one
    box of class 1: the dry run that shows which parameters the model leaves without a gradient."""
    device = next(model.parameters()).device
    image = torch.full((3, 64, 64), 0.5, device=device)
    target = {"boxes": torch.tensor([[16.0, 16.0, 40.0, 40.0]], device=device),
              "labels": torch.tensor([1], device=device)}
    return sum(model([image], [target]).values())


def _val_groups(cfg: DictConfig, val_set: Any) -> Any:
    """The parsed ``eval.group_by`` (None when unset), checked against the val images evaluated
    (the first ``eval.max_images``) before the first step, not at the first evaluation."""
    from mrae.evaluation.groups import image_groups, parse_group_by

    if cfg.eval.group_by is None:
        return None
    group_by = parse_group_by(str(cfg.eval.group_by), what="eval.group_by")
    if val_set is not None:
        ids = val_set.ids[: cfg.eval.max_images or len(val_set.ids)]
        image_groups(group_by, [val_set.coco.imgs[i] for i in ids], source=str(val_set.ann_file))
    return group_by
