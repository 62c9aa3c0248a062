"""`mrae train --config X.yaml`: iteration-based training of a Faster R-CNN detector.

``train(cfg, run_dir)`` takes the run folder's lock, checks the inputs before the folder exists
and runs a :class:`~mrae.engine.trainer.Trainer` (setup, then a short loop of hooks:
:mod:`mrae.engine.hooks`); the command line is :mod:`mrae.commands.train`.

One step: a batch of ``train.batch_size`` images per process, ``model(images, targets)`` (the
torchvision loss dict), the sum of the losses back-propagated, ``train.optimizer`` (SGD with
momentum, or AdamW: :mod:`mrae.engine.optim`), the lr of :mod:`mrae.engine.schedule`. Every
``train.eval_every`` steps (and after the last) the model is evaluated on the val set
(:func:`mrae.evaluation.evaluator.evaluate_model`), ``best.pth`` follows ``train.best_metric``;
every ``train.checkpoint_every`` steps (and after the last) a checkpoint is written atomically
(:mod:`mrae.engine.checkpoint`). Every ``train.log_every`` steps one record goes to
``metrics.jsonl`` (:mod:`mrae.engine.metrics_log`) and a progress line to the ``mrae`` logger.

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

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from mrae.engine import distributed, run_folder
from mrae.engine.metrics_log import log_to_stderr
from mrae.engine.trainer import Trainer, TrainingDiverged
from mrae.errors import ConfigError

__all__ = ["Trainer", "TrainingDiverged", "train"]


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    resume: bool = False,
    init_from: str | Path | None = None,
    trainer_class: type[Trainer] = Trainer,
    inputs: Sequence[str | Path] = (),
    overwrite: bool = False,
) -> dict[str, float]:
    """Train the detector of ``cfg`` into ``run_dir``; return the final evaluation's metrics.

    Args:
        cfg: a config from :func:`mrae.engine.config.load_config`.
        run_dir: the run folder: ``config.yaml``, ``metrics.jsonl``, ``tb/``, ``checkpoints/``.
        resume: continue from ``run_dir/checkpoints/last.pth`` (the newest intact ``step_*.pth``
            when it is damaged; the config may raise ``train.steps``, not lower it below the
            checkpoint's step; the rest should be the run's).
        init_from: a checkpoint whose model weights (only) start this run; strict load.
        trainer_class: a :class:`~mrae.engine.trainer.Trainer` subclass to run instead (its own
            model, optimizer, schedule, data or hooks).
        inputs: more files the run reads (the config file), never inside ``run_dir``.
        overwrite: start a new run in a folder that holds files mrae did not write (the folder
            is checked by :func:`mrae.ownership.claim_folder`; a resume needs no permission).

    Returns:
        The metrics of the evaluation after the last step (see
        :func:`mrae.evaluation.evaluator.evaluate_model`); empty when there is no val set.

    The progress goes to the ``mrae`` logger; when the program gave it no handler, plain lines on
    stderr (:func:`mrae.engine.metrics_log.log_to_stderr`).

    Raises:
        ConfigError: a run already in ``run_dir`` without ``resume``, a ``run_dir`` holding files
            mrae did not write (without ``overwrite``) or holding an input or lying inside the
            dataset (with it), nothing (intact) to resume,
            a checkpoint past ``train.steps`` or that does not fit the model (or its optimizer),
            another process writing ``run_dir``.
        TrainingDiverged: a non-finite loss, gradient or weights; ``last.pth`` stays the last
            good state.
    """
    from mrae.data.validate import check_image_files
    from mrae.engine.config import resolve_data
    from mrae.engine.runlock import RunLock
    from mrae.ownership import MARKER, claim_folder, dataset_roots, record_whole

    log_to_stderr()
    process = distributed.setup(cfg.train.device)
    joined = process.distributed
    try:
        if not process.is_main:
            return trainer_class(cfg, Path(run_dir), process, resume, init_from).train()
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file, not a run folder; choose another --out")
        check_image_files(resolve_data(cfg))  # missing images named before the run folder exists
        created = not run_dir.exists()
        claim = None
        if not resume:  # a new run goes into a new, empty or mrae-made folder
            run_folder.check_start(run_dir, resume, init_from)
            data = [v for v in resolve_data(cfg, progress=False).values() if v is not None]
            claim = claim_folder(run_dir, "train", inputs=[*data, *inputs, init_from],
                                 overwrite=overwrite, whole=True, accept=("study", "demo"),
                                 datasets=dataset_roots(data), create=False,
                                 kept=run_folder.KEPT_LOGS)
        with RunLock(run_dir):  # one writer per run folder
            marked = False
            try:
                marked = claim is not None and claim.mark()
                trainer = trainer_class(cfg, run_dir, process, resume, init_from)
            except BaseException:
                if created:  # a setup that failed (bad weights or settings) leaves no empty run behind
                    run_folder.remove_unused(run_dir)
                elif marked:  # nor a marker in the user's empty folder
                    (run_dir / MARKER).unlink(missing_ok=True)
                raise
            try:
                return trainer.train()
            finally:  # what the run wrote is listed in its folder's marker (also when it stops)
                record_whole(run_dir, run_folder.run_files(run_dir))
    finally:
        if joined:
            distributed.cleanup()
