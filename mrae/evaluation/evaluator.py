"""Running a detector over a COCO dataset: its results, the COCO metric, proposal recall and speed.

:func:`evaluate_model` runs a detector over a :class:`mrae.data.coco.CocoDetection` one image at a
time and returns ``(metrics, detections)``:

- ``AP, AP50, AP75, APs, APm, AR1, AR10, AR100, ARs, ARm`` and ``AP_verytiny, AP_tiny,
  AP_small, AP_medium``: the COCO metric and AI-TOD's buckets of
  :mod:`mrae.evaluation.coco_metrics` at ``max_dets`` (COCO's 1, 10, 100 by default; other
  values give ``AR<k>`` and ``AP@<k>`` of each), fractions in [0, 1], NaN where there is no
  ground truth to measure them;
- ``TIDE_AP50``, ``dAP_<type>``, ``errors_<type>``: TIDE's error breakdown
  (:mod:`mrae.evaluation.tide`) at the largest maxDets;
- with ``group_by``: ``AP[name=value]``, ``AP50[name=value]``, ``images[name=value]`` per
  condition (:mod:`mrae.evaluation.groups`);
- ``recall@100, recall@300, recall@1000``: the fraction of small ground-truth boxes (non-crowd,
  ``area`` < 32^2) that one of the RPN's top-k proposals covers at IoU >= 0.5;
- ``ms_per_image``: the detector's inference time per image in milliseconds (batch 1, the first
  image left out as warm-up; data loading not counted).

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
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from torch import Tensor, nn
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou
from tqdm import tqdm

from mrae.data.sizes import SMALL_AREA
from mrae.device import resolve_device, timed
from mrae.errors import ConfigError, DataError
from mrae.evaluation.coco_metrics import coco_metrics
from mrae.evaluation.groups import group_metrics, image_groups
from mrae.evaluation.options import COCO_MAX_DETS, GroupBy, check_max_dets
from mrae.evaluation.slicing import SliceOptions, sliced_detect
from mrae.evaluation.tide import error_breakdown
from mrae.modeling.caps import detections_per_image

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
    max_dets: Sequence[int] = COCO_MAX_DETS,
    group_by: GroupBy | None = None,
    errors: bool = True,
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
        max_dets: the detections per image COCOeval counts (increasing; the largest at most the
            model's own cap, :func:`mrae.modeling.caps.detections_per_image`).
        group_by: also AP per condition of the evaluated images (checked before the model runs:
            an expression that matches none of them is a DataError).
        errors: also TIDE's error breakdown.

    Returns:
        ``(metrics, detections)``: metric name -> float (see the module docstring), and the COCO
        results list of every evaluated image.
    """
    if getattr(dataset, "transforms", None) is not None:
        raise ConfigError(
            "evaluation needs a dataset without transforms (its boxes are compared with the "
            "annotation file): build it with no transforms"
        )
    count = len(dataset) if max_images is None else min(int(max_images), len(dataset))
    if count < 1:
        raise ConfigError(f"max_images must be >= 1, got {max_images}")
    device = resolve_device(device)
    counts = sorted({int(k) for k in proposal_counts})
    if counts and counts[0] < 1:
        raise ConfigError(f"proposal_counts must be >= 1, got {list(proposal_counts)}")
    max_dets = check_max_dets(max_dets, detections_per_image(model), what="max_dets")
    groups = None
    if group_by is not None:
        images = [dataset.coco.imgs[i] for i in dataset.ids[:count]]
        groups = image_groups(group_by, images, source=str(getattr(dataset, "ann_file", "the dataset")))

    was_training = model.training
    model.to(device).eval()
    two_stage = _is_two_stage(model) and slicing is None
    image_ids: list[int] = []
    detections: list[dict[str, Any]] = []
    seconds: list[float] = []
    covered = dict.fromkeys(counts, 0)
    small_gt = 0
    try:
        # sliced: the configured RPN
        wide_rpn, keep = _rpn_keeping_at_least(model, max(counts, default=0)) if two_stage else (None, None)
        with torch.inference_mode():
            for index in tqdm(range(count), desc="eval", unit="img", disable=not progress):
                image, target = dataset[index]
                image_id = int(target["image_id"])
                batch = [image.to(device)]
                if slicing is not None:
                    output, elapsed = timed(functools.partial(sliced_detect, model, batch[0], slicing), device)
                    outputs, proposals = [output], None
                elif two_stage:
                    (outputs, proposals), elapsed = timed(
                        functools.partial(detect_with_proposals, model, batch, keep, wide_rpn), device)
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

    metrics = coco_metrics(dataset.coco, detections, image_ids, max_dets)
    if errors:
        metrics.update(error_breakdown(dataset.coco, detections, image_ids, max_dets=max_dets[-1]))
    if groups is not None:
        metrics.update(group_metrics(dataset.coco, detections, groups, max_dets))
    for k in proposal_counts:
        recall = covered[k] / small_gt if two_stage and small_gt else math.nan
        metrics[f"recall@{k}"] = recall
    # The first image pays for lazy initialisation (allocator, cuDNN autotuning): a warm-up.
    steady = seconds[1:] if len(seconds) > 1 else seconds
    metrics["ms_per_image"] = 1000.0 * float(np.mean(steady))
    return metrics, detections


def detect_with_proposals(
    model: nn.Module, images: list[Tensor], box_head_proposals: int | None = None,
    rpn: nn.Module | None = None,
) -> tuple[list[dict[str, Tensor]], list[Tensor]]:
    """Eval-mode forward of a torchvision ``GeneralizedRCNN`` that also returns its proposals.

    The steps are those of ``GeneralizedRCNN.forward``: transform, backbone, rpn, roi_heads,
    postprocess. The box head gets the first ``box_head_proposals`` proposals of each image (all
    when None): the RPN sorts them by objectness, so these are the ones it would have kept with
    ``post_nms_top_n = box_head_proposals``. ``rpn`` stands in for ``model.rpn`` (None: the
    model's own), e.g. one keeping more proposals.

    Returns:
        ``(detections, proposals)``: per image, ``{"boxes": [D, 4], "labels": [D], "scores": [D]}``
        and the proposals ``[P, 4]`` (xyxy, best first), both in the input image's pixels.
    """
    original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
    batch, _ = model.transform(images)
    features = model.backbone(batch.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = (model.rpn if rpn is None else rpn)(batch, features)
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


def _is_two_stage(model: nn.Module) -> bool:
    return all(hasattr(model, part) for part in ("transform", "backbone", "rpn", "roi_heads"))


def _rpn_keeping_at_least(model: nn.Module, count: int) -> tuple[nn.Module | None, int | None]:
    """An RPN for ``model`` that keeps at least ``count`` proposals per image after its NMS in
    evaluation, and the count the model's own RPN keeps: ``rpn.with_post_nms_top_n(testing=...)``
    (:class:`mrae.modeling.rpn.RPN`, the RPN of every Faster R-CNN mrae builds; a new module on
    the same parameters, the model itself unchanged). ``(None, None)`` for an RPN without it."""
    rpn = getattr(model, "rpn", None)
    if not callable(getattr(rpn, "with_post_nms_top_n", None)):
        return None, None
    configured = int(rpn.settings.post_nms_top_n_test)
    return rpn.with_post_nms_top_n(testing=max(configured, count)), configured
