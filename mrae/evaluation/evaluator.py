"""COCO evaluation of a detector: the paper's Table 2 columns, tiny-object AP and proposal recall.

:func:`evaluate_model` runs a detector over a :class:`mrae.data.coco.CocoDetection` one image at a
time and returns ``(metrics, detections)``:

- ``AP, AP50, AP75, APs, APm, AR1, AR10, AR100, ARs, ARm``: pycocotools' ``COCOeval`` (bbox)
  ``stats`` 0, 1, 2, 3, 4, 6, 7, 8, 9, 10 over the evaluated images, as fractions in [0, 1];
- ``AP_verytiny, AP_tiny, AP_small``: AP@[.5:.95] of a second ``COCOeval`` whose area ranges are
  the tiny-object buckets of :mod:`mrae.data.sizes` (box side < 8, 8..16, 16..32 px);
- ``recall@100, recall@300, recall@1000``: the fraction of small ground-truth boxes (non-crowd,
  ``area`` < 32^2) that one of the RPN's top-k proposals covers at IoU >= 0.5;
- ``ms_per_image``: the detector's inference time per image in milliseconds (batch 1, the first
  image left out as warm-up; data loading not counted).

A metric without ground truth to measure it (COCOeval's -1, e.g. ``APm`` on a small-only dataset)
is NaN, never -1. Like COCOeval, the area ranges use each ground-truth annotation's ``area`` field
(for real COCO that is the segmentation mask's area, smaller than the box's ``w * h``; files
without one get ``w * h`` from :func:`mrae.data.validate.load_coco_json`), with both ends included.
All size buckets (APs/APm, ARs/ARm, the tiny buckets, the small boxes of the recall) count
**original-image pixels**, not the model's resized input: detections are mapped back to the
original image before they are compared. ``mrae eval`` prints this under its tables and writes it
into the metrics file (``size_pixels``).

``detections`` is a standard COCO results list (``image_id, category_id, bbox`` xywh, ``score``):
``COCOeval`` run directly on that list, written to a file, gives the same numbers.

With ``slicing`` (``mrae eval --slice HxW --overlap F ...``) each image is detected tile by tile
at its native resolution and the tiles' detections merged (:func:`mrae.evaluation.slicing.sliced_detect`);
``ms_per_image`` then counts every tile (and the full pass), and there is no proposal recall (NaN:
the proposals are per tile).

CLI: ``mrae eval --config X.yaml --checkpoint CKPT [key=value ...] [--out DIR] [--split val]
[--slice HxW --overlap F --merge nms|greedy --full-pass ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import Tensor, nn
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou
from tqdm import tqdm

from mrae.choices import COCO_STATS, DIAGNOSTIC_COLUMNS, TABLE_COLUMNS
from mrae.data.sizes import ORIGINAL_PIXELS, SMALL_AREA, TINY_AREA_RANGES
from mrae.device import resolve_device, timed
from mrae.errors import ConfigError, DataError
from mrae.evaluation.slicing import (
    SliceOptions,
    add_slice_arguments,
    as_record,
    describe,
    slice_options,
    sliced_detect,
)
from mrae.files import write_json_atomic, write_text_atomic
from mrae.tables import separator, table_row

_TITLES = {
    "ms_per_image": "ms",
    "AP_verytiny": "AP very tiny (<8 px)",
    "AP_tiny": "AP tiny (8-16 px)",
    "AP_small": "AP small (16-32 px)",
}

#: What the size buckets count, printed under the evaluation's tables.
SIZE_NOTE = (
    f"Size buckets (APs, APm, ARs, ARm, tiny, small) count {ORIGINAL_PIXELS} (the annotations' "
    "'area'), not the model's resized input."
)

# IoU at which a proposal counts as covering a ground-truth box.
_RECALL_IOU = 0.5


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    device: str | torch.device = "cpu",
    max_images: int | None = None,
    progress: bool = True,
    proposal_counts: Sequence[int] = (100, 300, 1000),
    slicing: SliceOptions | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Evaluate ``model`` on the first ``max_images`` images of ``dataset`` (all when None).

    Args:
        model: a torchvision detector taking ``list[Tensor[3, H, W]]`` and returning, in eval
            mode, one ``{"boxes": [D, 4] xyxy px, "labels": [D], "scores": [D]}`` per image. For
            a two-stage torchvision model (``transform``, ``backbone``, ``rpn``, ``roi_heads``)
            the forward is run step by step, as ``GeneralizedRCNN.forward`` does, to read the
            proposals too; any other model gives no proposal recall (NaN). Moved to ``device``
            and run in eval mode; its train/eval mode is restored afterwards.
        dataset: a :class:`~mrae.data.coco.CocoDetection` without geometric transforms (its
            ``coco`` is the ground truth; ``label_to_cat`` maps the model's labels to it).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (CUDA when available).
        max_images: evaluate only the first N images of the dataset's order.
        progress: show a tqdm bar on stderr.
        proposal_counts: the k of ``recall@k``. While evaluating, the RPN keeps at least
            ``max(proposal_counts)`` proposals after NMS (fewer where its ``pre_nms_top_n`` and
            NMS leave fewer); the box head still gets only its configured number, the top ones,
            so the detections are exactly those of the configured model.
        slicing: detect on overlapping tiles of each image and merge their detections
            (:mod:`mrae.evaluation.slicing`); no proposal recall then (NaN).

    Returns:
        ``(metrics, detections)``: metric name -> float (see the module docstring), and the COCO
        results list of every evaluated image.
    """
    if getattr(dataset, "transforms", None) is not None:
        raise ConfigError(
            "evaluation needs a dataset without transforms (its boxes are compared with the "
            "annotation file): build it with train=False and no flip/transforms"
        )
    count = len(dataset) if max_images is None else min(int(max_images), len(dataset))
    if count < 1:
        raise ConfigError(f"max_images must be >= 1, got {max_images}")
    device = resolve_device(device)
    counts = sorted({int(k) for k in proposal_counts})
    if counts and counts[0] < 1:
        raise ConfigError(f"proposal_counts must be >= 1, got {list(proposal_counts)}")

    was_training = model.training
    model.to(device).eval()
    two_stage = _is_two_stage(model) and slicing is None
    image_ids: list[int] = []
    detections: list[dict[str, Any]] = []
    seconds: list[float] = []
    covered = dict.fromkeys(counts, 0)
    small_gt = 0
    try:
        at_least = max(counts, default=0) if two_stage else 0  # sliced: the configured RPN
        with torch.inference_mode(), _rpn_keeps_at_least(model, at_least) as keep:
            for index in tqdm(range(count), desc="eval", unit="img", disable=not progress):
                image, target = dataset[index]
                image_id = int(target["image_id"])
                batch = [image.to(device)]
                if slicing is not None:
                    output, elapsed = timed(functools.partial(sliced_detect, model, batch[0], slicing), device)
                    outputs, proposals = [output], None
                elif two_stage:
                    (outputs, proposals), elapsed = timed(
                        functools.partial(detect_with_proposals, model, batch, keep), device)
                else:
                    outputs, elapsed = timed(functools.partial(model, batch), device)
                    proposals = None
                seconds.append(elapsed)

                image_ids.append(image_id)
                detections.extend(to_coco_results(outputs[0], image_id, dataset.label_to_cat))
                if proposals is not None:
                    gt = small_gt_boxes(dataset.coco, image_id)
                    small_gt += len(gt)
                    for k, n in proposals_covering(proposals[0].cpu(), gt, counts).items():
                        covered[k] += n
    finally:
        model.train(was_training)

    metrics = coco_metrics(dataset.coco, detections, image_ids)
    metrics.update(tiny_bucket_ap(dataset.coco, detections, image_ids))
    for k in proposal_counts:
        recall = covered[k] / small_gt if two_stage and small_gt else math.nan
        metrics[f"recall@{k}"] = recall
    # The first image pays for lazy initialisation (allocator, cuDNN autotuning): a warm-up.
    steady = seconds[1:] if len(seconds) > 1 else seconds
    metrics["ms_per_image"] = 1000.0 * float(np.mean(steady))
    return metrics, detections


def detect_with_proposals(
    model: nn.Module, images: list[Tensor], box_head_proposals: int | None = None
) -> tuple[list[dict[str, Tensor]], list[Tensor]]:
    """Eval-mode forward of a torchvision ``GeneralizedRCNN`` that also returns its proposals.

    The steps are those of ``GeneralizedRCNN.forward``: transform, backbone, rpn, roi_heads,
    postprocess. The box head gets the first ``box_head_proposals`` proposals of each image (all
    when None): the RPN sorts them by objectness, so these are the ones it would have kept with
    ``post_nms_top_n = box_head_proposals``.

    Returns:
        ``(detections, proposals)``: per image, ``{"boxes": [D, 4], "labels": [D], "scores": [D]}``
        and the proposals ``[P, 4]`` (xyxy, best first), both in the input image's pixels.
    """
    original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
    batch, _ = model.transform(images)
    features = model.backbone(batch.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(batch, features)
    head_input = proposals if box_head_proposals is None else [p[:box_head_proposals] for p in proposals]
    detections, _ = model.roi_heads(features, head_input, batch.image_sizes)
    detections = model.transform.postprocess(detections, batch.image_sizes, original_sizes)
    proposals = [
        resize_boxes(p, size, original)
        for p, size, original in zip(proposals, batch.image_sizes, original_sizes, strict=True)
    ]
    return detections, proposals


def to_coco_results(
    output: Mapping[str, Tensor], image_id: int, label_to_cat: Mapping[int, int]
) -> list[dict[str, Any]]:
    """One image's detections -> COCO results: ``image_id, category_id, bbox [x, y, w, h], score``.

    ``output`` holds ``boxes`` [D, 4] xyxy px, ``labels`` [D] (contiguous 1..C) and ``scores`` [D].
    """
    boxes = output["boxes"].detach().float().cpu().clone()  # not in place: the caller's boxes
    boxes[:, 2:] -= boxes[:, :2]
    results = []
    for box, label, score in zip(
        boxes.tolist(), output["labels"].tolist(), output["scores"].tolist(), strict=True
    ):
        if label not in label_to_cat:
            raise DataError(
                f"image id {image_id}: the model predicts label {label} but the dataset has "
                f"labels {sorted(label_to_cat)}; evaluate on data with the model's classes"
            )
        results.append(
            {"image_id": image_id, "category_id": label_to_cat[label], "bbox": box, "score": score}
        )
    return results


def load_results(coco_gt: COCO, results: list[dict[str, Any]]) -> COCO:
    """``coco_gt.loadRes(results)`` that also takes an empty list (COCOeval then gives AP 0)."""
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_gt.loadRes(results)
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": list(coco_gt.dataset["categories"]),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


def coco_metrics(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: Sequence[int]
) -> dict[str, float]:
    """COCOeval (bbox) over ``image_ids``: the Table 2 metrics, fractions; NaN where COCO gives -1."""
    evaluator = _run_cocoeval(coco_gt, load_results(coco_gt, results), image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.summarize()
    return {name: _nan_if_missing(evaluator.stats[i]) for name, i in COCO_STATS.items()}


def tiny_bucket_ap(
    coco_gt: COCO,
    results: list[dict[str, Any]],
    image_ids: Sequence[int],
    ranges: Mapping[str, tuple[float, float]] = TINY_AREA_RANGES,
) -> dict[str, float]:
    """AP@[.5:.95] (100 detections) per area range: ``{"AP_<name>": AP}``, NaN for a bucket without GT.

    The same number as COCOeval's ``summarize`` gives for an ``areaRng`` entry: the mean of
    ``eval["precision"][:, :, :, a, maxDets=100]`` over its entries > -1. Ranges are in px^2 of
    the annotations' ``area`` field, both ends included (COCOeval's rule).
    """
    evaluator = _run_cocoeval(
        coco_gt,
        load_results(coco_gt, results),
        image_ids,
        area_ranges=[[float(lo), float(hi)] for lo, hi in ranges.values()],
        area_labels=list(ranges),
    )
    precision = evaluator.eval["precision"]  # [T iou, R recall, K class, A area, M maxDets]
    max_dets = evaluator.params.maxDets.index(100)
    metrics = {}
    for a, name in enumerate(ranges):
        values = precision[:, :, :, a, max_dets]
        values = values[values > -1]
        metrics[f"AP_{name}"] = float(np.mean(values)) if values.size else math.nan
    return metrics


def small_gt_boxes(coco_gt: COCO, image_id: int, max_area: float = SMALL_AREA) -> Tensor:
    """The small ground truth of an image: non-crowd, ``area`` < ``max_area``; [G, 4] xyxy px."""
    anns = [
        a for a in coco_gt.imgToAnns.get(image_id, ()) if not a["iscrowd"] and a["area"] < max_area
    ]
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def proposals_covering(
    proposals: Tensor, gt_boxes: Tensor, counts: Sequence[int], iou: float = _RECALL_IOU
) -> dict[int, int]:
    """How many of ``gt_boxes`` [G, 4] one of the first k ``proposals`` [P, 4] covers at ``iou``.

    Both xyxy in the same pixels; proposals sorted best first. Returns ``{k: covered}``.
    """
    if len(gt_boxes) == 0 or len(proposals) == 0:
        return dict.fromkeys(counts, 0)
    overlaps = box_iou(gt_boxes.float(), proposals.float()) >= iou  # [G, P]
    covered = overlaps.any(1)
    first = overlaps.int().argmax(1)  # rank of the first proposal covering each GT box
    return {k: int((covered & (first < k)).sum()) for k in counts}


def table_header(columns: Sequence[str] = TABLE_COLUMNS, name: str = "model") -> str:
    """The two header lines of a markdown table with ``columns`` after a ``name`` column."""
    titles = [_TITLES.get(c, c) for c in columns]
    return table_row([name, *titles]) + "\n" + separator(len(columns) + 1)


#: Header of the paper's Table 2: AP, AP50, AP75, APs, APm, AR1, AR10, AR100, ARs, ARm, ms.
TABLE_HEADER = table_header()


def markdown_row(name: str, metrics: Mapping[str, Any], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A markdown table row: AP, AR and recall x100 with one decimal (the paper's form), ms as is.

    A metric that is missing, None or NaN prints as ``-``.
    """
    cells = [name]
    for column in columns:
        value = metrics.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            cells.append("-")
        elif column == "ms_per_image":
            cells.append(f"{value:.1f}")
        else:
            cells.append(f"{100.0 * value:.1f}")
    return table_row(cells)


def _run_cocoeval(
    coco_gt: COCO,
    coco_dt: COCO,
    image_ids: Sequence[int],
    area_ranges: list[list[float]] | None = None,
    area_labels: list[str] | None = None,
) -> COCOeval:
    evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    evaluator.params.imgIds = sorted(set(image_ids))
    if area_ranges is not None:
        evaluator.params.areaRng = area_ranges
        evaluator.params.areaRngLbl = area_labels
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _nan_if_missing(value: float) -> float:
    return math.nan if value < 0 else float(value)


def _is_two_stage(model: nn.Module) -> bool:
    return all(hasattr(model, part) for part in ("transform", "backbone", "rpn", "roi_heads"))


@contextlib.contextmanager
def _rpn_keeps_at_least(model: nn.Module, count: int) -> Iterator[int | None]:
    """Raise the RPN's test-time ``post_nms_top_n`` to ``count``; yields the configured value.

    torchvision keeps it in the private dict ``rpn._post_nms_top_n``; it is restored on exit.
    """
    rpn = getattr(model, "rpn", None)
    top_n = getattr(rpn, "_post_nms_top_n", None)
    if not isinstance(top_n, dict) or "testing" not in top_n:
        yield None
        return
    configured = top_n["testing"]
    top_n["testing"] = max(configured, count)
    try:
        yield configured
    finally:
        top_n["testing"] = configured


# ---------------------------------------------------------------------------------------------
# CLI: mrae eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="YAML config whose data section names the dataset (default: RUN_DIR/config.yaml "
        "of the checkpoint's run, else the config stored in the checkpoint)",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (.pth) to evaluate")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="config overrides as key.sub=value, e.g. eval.max_images=50"
    )
    parser.add_argument(
        "--out", help="folder for the metrics and detections JSON (default: RUN_DIR/eval/)"
    )
    parser.add_argument("--split", choices=("val", "train"), default="val", help="dataset split (default: val)")
    parser.add_argument(
        "--max-images", type=int, help="evaluate the first N images (default: eval.max_images, else all)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the config's train.device)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_slice_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from mrae.data.coco import CocoDetection
    from mrae.engine.checkpoint import load_model
    from mrae.engine.config import load_config, resolve_data

    slicing = slice_options(args)  # checked before the model is loaded
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise ConfigError(f"--checkpoint {checkpoint}: no such file; give a .pth from RUN_DIR/checkpoints/")
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    model, saved_cfg, class_names = load_model(checkpoint)
    if args.config is not None:
        cfg = load_config(args.config, list(args.overrides))
    elif (run_dir / "config.yaml").is_file():
        cfg = load_config(run_dir / "config.yaml", list(args.overrides))
    elif not args.overrides:
        cfg = saved_cfg
    else:
        raise ConfigError(
            f"overrides need a config: {checkpoint} has no config.yaml beside its run; pass --config X.yaml"
        )
    device = resolve_device(args.device or cfg.train.device)

    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a file, not a folder; choose another --out")
    paths = resolve_data(cfg)
    images, annotations = paths[f"{args.split}_images"], paths[f"{args.split}_annotations"]
    if images is None or annotations is None:
        raise ConfigError(
            f"data.{args.split}_images / data.{args.split}_annotations: the config names no "
            f"{args.split} set; set both paths"
        )
    dataset = CocoDetection(images, annotations, train=False)
    if list(class_names) != list(dataset.class_names):
        raise DataError(
            f"{annotations}: its classes {dataset.class_names} are not the checkpoint's "
            f"{list(class_names)}; evaluate on data with the classes the model was trained on"
        )
    max_images = args.max_images if args.max_images is not None else cfg.eval.max_images
    metrics, detections = evaluate_model(
        model, dataset, device=device, max_images=max_images, progress=not args.no_progress,
        slicing=slicing,
    )

    name = f"{cfg.get('name') or run_dir.name} ({checkpoint.name}{', sliced' if slicing else ''})"
    print(TABLE_HEADER)
    print(markdown_row(name, metrics))
    print()
    print(table_header(DIAGNOSTIC_COLUMNS))
    print(markdown_row(name, metrics, DIAGNOSTIC_COLUMNS))
    print(SIZE_NOTE)
    if slicing is not None:
        print(f"Sliced inference: {describe(slicing)} (native px); no proposal recall.")

    out = Path(args.out) if args.out else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "checkpoint": str(checkpoint),
        "split": args.split,
        "images": min(len(dataset), max_images or len(dataset)),
        "annotations": str(annotations),
        "size_pixels": ORIGINAL_PIXELS,
        "slicing": as_record(slicing),
        "metrics": {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()},
    }
    metrics_path = out / f"metrics_{args.split}.json"
    results_path = out / f"detections_{args.split}.json"
    write_json_atomic(metrics_path, record)
    write_text_atomic(results_path, json.dumps(detections) + "\n")
    print(f"\nwrote {metrics_path} and {results_path} ({len(detections)} detections)")
    return 0
