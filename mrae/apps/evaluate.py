"""The evaluation of a trained checkpoint (`mrae eval`): its dataset found, the model run, the files.

:func:`evaluate_checkpoint` loads a checkpoint of ``mrae train``, takes the config that names the
dataset (``config``, else ``RUN_DIR/config.yaml`` beside the checkpoint's run, else the config
stored in the checkpoint), builds the split's dataset, checks that its classes are the
checkpoint's and runs :func:`mrae.evaluation.evaluator.evaluate_model` (optionally sliced).
:func:`write_evaluation` writes ``metrics_<split>.json`` (the record: checkpoint, split, images,
annotations, size pixels, slicing, metrics with NaN as null) and ``detections_<split>.json`` (the
COCO results) into the output folder, by default ``RUN_DIR/eval/``; the record also says the
maxDets counted, the model's per-image cap and the group-by expression.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mrae.data.coco import CocoDetection
from mrae.data.sizes import ORIGINAL_PIXELS
from mrae.device import resolve_device
from mrae.engine.config import load_config, resolve_data
from mrae.engine.trained import load_trained
from mrae.errors import ConfigError, DataError
from mrae.evaluation.evaluator import evaluate_model
from mrae.evaluation.options import GroupBy, check_max_dets, parse_group_by
from mrae.evaluation.slicing import SliceOptions, as_record, check_tile_count
from mrae.files import write_json_atomic, write_text_atomic
from mrae.inputs import CHECKPOINT_LIMIT, check_regular
from mrae.modeling.caps import detections_per_image, set_detection_caps
from mrae.ownership import Claim, claim_folder, dataset_roots


class Evaluation(NamedTuple):
    """What :func:`evaluate_checkpoint` measured, and where :func:`write_evaluation` writes it."""

    name: str  # the row name: "<config name or run folder> (<checkpoint file>[, sliced])"
    checkpoint: Path
    split: str  # "val" or "train"
    annotations: str  # the split's annotation file
    images: int  # images evaluated
    slicing: SliceOptions | None
    metrics: dict[str, float]  # see mrae.evaluation.evaluator
    detections: list[dict[str, Any]]  # COCO results
    out: Path  # the folder for the files
    max_dets: tuple[int, ...] = (1, 10, 100)  # the maxDets COCOeval counted
    group_by: str | None = None  # the [FIELD:]REGEX of the groups, if any
    detections_per_img: int | None = None  # the model's cap when evaluated
    image_folder: str | None = None  # the split's images folder (an input: never written into)


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    split: str = "val",
    max_images: int | None = None,
    device: str | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    slicing: SliceOptions | None = None,
    overwrite: bool = False,
    max_dets: Sequence[int] | None = None,
    group_by: str | GroupBy | None = None,
    detections_per_img: int | None = None,
    detections_per_class: int | None = None,
) -> Evaluation:
    """Evaluate ``checkpoint`` on the ``split`` of its config's data (see the module docstring).

    ``max_images`` defaults to the config's ``eval.max_images``, ``max_dets`` to its
    ``eval.max_dets``, ``group_by`` to its ``eval.group_by``, ``device`` to its ``train.device``,
    ``out`` to ``RUN_DIR/eval``. ``detections_per_img`` / ``detections_per_class`` replace the
    model's caps (not an exported ``.onnx`` model's: its caps are in its graph); ``max_dets``
    above the per-image cap is a ConfigError, before the model runs. The output files are
    checked before the model runs (:func:`output_names`; replacing a file eval did not write with
    the same checkpoint, split and slicing needs ``overwrite``). Raises ConfigError (the checkpoint or the split
    missing, ``out`` a file, overrides without a config, an output not eval's own) or DataError
    (other classes).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        if checkpoint.exists():  # a FIFO, a device, a folder: said what it is
            check_regular(checkpoint, CHECKPOINT_LIMIT, what="checkpoint", error=ConfigError)
        raise ConfigError(f"--checkpoint {checkpoint}: no such file; give a .pth from RUN_DIR/checkpoints/")
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    model, saved_cfg, class_names, _ = load_trained(checkpoint)
    if config is not None:
        cfg = load_config(config, list(overrides))
    elif (run_dir / "config.yaml").is_file():
        cfg = load_config(run_dir / "config.yaml", list(overrides))
    elif not overrides:
        cfg = saved_cfg
    else:
        raise ConfigError(
            f"overrides need a config: {checkpoint} has no config.yaml beside its run; pass --config X.yaml"
        )
    _check_model_overrides(overrides, cfg, saved_cfg, checkpoint)
    device = resolve_device(device or cfg.train.device)
    max_dets = tuple(cfg.eval.max_dets if max_dets is None else max_dets)
    check_max_dets(max_dets)  # the cap is checked below, once the model's is set
    if group_by is None and cfg.eval.group_by is not None:
        group_by = str(cfg.eval.group_by)
    if isinstance(group_by, str):
        group_by = parse_group_by(group_by)
    if detections_per_img is not None or detections_per_class is not None:
        if checkpoint.suffix.lower() == ".onnx":
            raise ConfigError(f"--checkpoint {checkpoint}: an exported model's detection caps are "
                              "in its graph; export it again with model.detections_per_img=N")
        for flag, value in (("--detections-per-img", detections_per_img),
                            ("--detections-per-class", detections_per_class)):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} {value}: must be >= 1")
        set_detection_caps(model, detections_per_img, detections_per_class)
    cap = detections_per_image(model)
    check_max_dets(max_dets, cap, raise_cap="--detections-per-img {n}")

    if out and Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder; choose another --out")
    paths = resolve_data(cfg)
    images, annotations = paths[f"{split}_images"], paths[f"{split}_annotations"]
    if images is None or annotations is None:
        raise ConfigError(
            f"data.{split}_images / data.{split}_annotations: the config names no "
            f"{split} set; set both paths"
        )
    out = Path(out) if out else run_dir / "eval"
    _check_outputs(out, checkpoint, split, slicing, [checkpoint, images, annotations], overwrite,
                   create=False)  # before the model runs; the folder is made when written
    dataset = CocoDetection(images, annotations, train=False)
    if list(class_names) != list(dataset.class_names):
        raise DataError(
            f"{annotations}: its classes {dataset.class_names} are not the checkpoint's "
            f"{list(class_names)}; evaluate on data with the classes the model was trained on"
        )
    if max_images is None:
        max_images = cfg.eval.max_images
    if slicing is not None:  # before the model runs: no image past the tile limit
        for info in (dataset.coco.imgs[i] for i in dataset.ids[:max_images or None]):
            if isinstance(info.get("height"), int) and isinstance(info.get("width"), int):
                check_tile_count(info["height"], info["width"], slicing,
                                 f"{annotations}: image {info.get('file_name')}")
    metrics, detections = evaluate_model(
        model, dataset, device=device, max_images=max_images, progress=progress, slicing=slicing,
        max_dets=max_dets, group_by=group_by,
    )
    return Evaluation(
        name=f"{cfg.get('name') or run_dir.name} ({checkpoint.name}{', sliced' if slicing else ''})",
        checkpoint=checkpoint,
        split=split,
        annotations=str(annotations),
        images=min(len(dataset), max_images or len(dataset)),
        slicing=slicing,
        metrics=metrics,
        detections=detections,
        out=out,
        max_dets=max_dets,
        group_by=group_by.text if group_by is not None else None,
        detections_per_img=cap,
        image_folder=str(images),
    )


def _check_model_overrides(overrides: Sequence[str], cfg: Any, saved: Any, checkpoint: Path) -> None:
    """Refuse a ``model.*`` override that changes the model: eval runs the checkpoint's own model
    (its stored config), so such an override would be ignored without a word."""
    from omegaconf import OmegaConf

    def plain(value: Any) -> Any:
        return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

    for override in overrides:
        key = str(override).partition("=")[0].strip().lstrip("+~")
        if not key.startswith("model."):
            continue
        stored = plain(OmegaConf.select(saved, key, default=None))
        if plain(OmegaConf.select(cfg, key, default=None)) != stored:
            raise ConfigError(f"{override}: eval runs the model stored in {checkpoint} ({key} = "
                              f"{stored}); a model.* override cannot change it: drop it (the caps: "
                              "--detections-per-img, --detections-per-class)")


def output_names(split: str, slicing: SliceOptions | None) -> tuple[str, str]:
    """The metrics and detections file names: ``metrics_<split>.json`` and
    ``detections_<split>.json``, with ``_slice<H>x<W>`` before ``.json`` for sliced inference, so
    that a sliced and a whole-image evaluation into one folder keep both results."""
    tag = split if slicing is None else f"{split}_slice{slicing.tile_h}x{slicing.tile_w}"
    return f"metrics_{tag}.json", f"detections_{tag}.json"


def _producer(checkpoint: Path, split: str, slicing: SliceOptions | None) -> str:
    """What produced an output file: a file of eval's is replaced without --overwrite only by an
    evaluation of the same checkpoint, split and slicing."""
    return json.dumps({"checkpoint": str(checkpoint.resolve()), "split": split,
                       "slicing": as_record(slicing)}, sort_keys=True)


def _check_outputs(out: Path, checkpoint: Path, split: str, slicing: SliceOptions | None,
                   inputs: list, overwrite: bool, create: bool) -> tuple[Claim, list[Path]]:
    claim = claim_folder(out, "eval", inputs=inputs, overwrite=overwrite, create=create,
                         datasets=dataset_roots(inputs[1:]))
    producer = _producer(checkpoint, split, slicing)
    return claim, [claim.check(name, producer) for name in output_names(split, slicing)]


def write_evaluation(evaluation: Evaluation, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the metrics record and the detections into ``evaluation.out``; return both paths.

    The folder is claimed for eval (:func:`mrae.ownership.claim_folder`); a file there that eval
    did not write for the same checkpoint, split and slicing is replaced only with ``overwrite``.
    """
    out = evaluation.out
    claim, (metrics_path, results_path) = _check_outputs(
        out, evaluation.checkpoint, evaluation.split, evaluation.slicing,
        [evaluation.checkpoint, evaluation.image_folder, evaluation.annotations], overwrite, create=True)
    record = {
        "checkpoint": str(evaluation.checkpoint),
        "split": evaluation.split,
        "images": evaluation.images,
        "annotations": evaluation.annotations,
        "size_pixels": ORIGINAL_PIXELS,
        "slicing": as_record(evaluation.slicing),
        "max_dets": list(evaluation.max_dets),
        "detections_per_img": evaluation.detections_per_img,
        "group_by": evaluation.group_by,
        "metrics": {k: None if isinstance(v, float) and math.isnan(v) else v
                    for k, v in evaluation.metrics.items()},
    }
    write_json_atomic(metrics_path, record)
    write_text_atomic(results_path, json.dumps(evaluation.detections) + "\n")
    claim.record([metrics_path, results_path],
                 _producer(evaluation.checkpoint, evaluation.split, evaluation.slicing))
    return metrics_path, results_path
