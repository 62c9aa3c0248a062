"""Anchors fitted to the training boxes: `mrae anchors ANN.json`.

Torchvision's default anchors (32..512 px, what ``fasterrcnn_resnet50_fpn`` uses) never reach the
RPN's positive IoU of 0.7 with a 10 px box, and such boxes then only train as the single "best"
anchor of a low-quality match (open-mmlab/mmdetection#11703). This module

* resizes the boxes as the detector's ``GeneralizedRCNNTransform`` will (:func:`resize_boxes`),
* clusters them with k-means in log space: ``scales`` clusters of the scale ``sqrt(w * h)`` and
  ``ratios`` clusters of the aspect ratio ``h / w`` (torchvision's convention)
  (:func:`cluster_anchors`),
* scores a set of anchors against the boxes: the mean best IoU of the anchor shapes centred on
  each box (:func:`mean_best_iou`), and the share of boxes that some anchor *on the feature grid*
  of a given stride matches at IoU >= 0.7 and >= 0.5 (:func:`grid_best_iou`, :func:`match_shares`).

Anchors are scored as torchvision's ``AnchorGenerator`` builds them: every (size, ratio) pair gives
``w = size / sqrt(ratio)``, ``h = size * sqrt(ratio)``, and the corners ``(-w/2, -h/2, w/2, h/2)``
are *rounded to integers* (so a 5 px anchor is really 4 px wide), centred at the grid points
``(k * stride, l * stride)``, ``k = 0 .. W_feat - 1``, where ``W_feat`` is the width of the image
padded to a multiple of 32 divided by the stride.

Every size the command prints (the anchors, the median box, the IoU table) is in **resized (model
input) pixels**: the boxes are scaled as the model's transform scales them, with the resize of a
training config (``--config X.yaml``: its ``model.min_size``, ``model.max_size`` and
``model.fixed_size``, so the anchors and the model cannot drift apart) or of ``--min-size`` /
``--max-size`` / ``--fixed-size`` (default 300 / 512, the config's default). A 512 x 300 image,
the synthetic benchmark's, is scaled by 1.0.

No torch import without ``--config``: the command reads JSON and runs numpy and scikit-learn only
(checking a config's model section imports the detector's choices).
"""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np

from mrae.errors import ConfigError, DataError
from mrae.tables import markdown_table as write_table

TORCHVISION_SIZES: tuple[float, ...] = (32, 64, 128, 256, 512)
TORCHVISION_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
SIZE_DIVISIBLE = 32  # GeneralizedRCNNTransform pads the batch to a multiple of this
_QUANTUM = 1e-3  # k-means runs on log values rounded to this, weighted by their counts
_CHUNK = 65536  # boxes per block in the (boxes x anchors) IoU computations
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- boxes


def load_boxes(ann_file: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of a COCO instances JSON, crowd boxes and ignore regions excluded.

    Returns ``(boxes, image_hw)``: float64 arrays (K, 4) of ``[x, y, w, h]`` in pixels and (K, 2)
    of the height and width of each box's image. The file is checked by the one COCO check every
    command uses (:func:`mrae.data.validate.check_coco`: ids, references, ``iscrowd`` and
    ``ignore`` values, finite sizes and areas), which also clips boxes to their image and drops
    empty ones (counted in one warning line). Raises DataError when the file is unreadable, is
    not a valid COCO instances file, or has no (non-crowd) boxes.
    """
    from mrae.data.validate import check_coco, read_json

    data = read_json(ann_file, fast=True)  # boxes only: the faster parser
    report = check_coco(data, str(ann_file))
    if report.clipped or report.dropped:
        log.warning("%s: %d boxes clipped to their image, %d empty or outside boxes dropped",
                    ann_file, report.clipped, report.dropped)
    sizes = {image["id"]: (image["height"], image["width"]) for image in data["images"]}
    anns = [a for a in data["annotations"] if not a["iscrowd"]]
    if not anns:
        raise DataError(f"{ann_file}: no boxes (crowd boxes excluded); anchors need training boxes")
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
    image_hw = np.array([sizes[a["image_id"]] for a in anns], dtype=np.float64)
    return boxes, image_hw


def resize_boxes(
    boxes: np.ndarray,
    image_hw: np.ndarray,
    min_size: float = 300,
    max_size: float = 512,
    fixed_size: tuple[int, int] | None = None,
    tile: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and image sizes after the detector's resize.

    Args:
        boxes: (K, 4) ``[x, y, w, h]`` pixels of the original image.
        image_hw: (K, 2) height, width of each box's image.
        min_size, max_size: torchvision's rule ``scale = min(min_size / min(h, w),
            max_size / max(h, w))``, the new size ``floor(h * scale), floor(w * scale)``.
        fixed_size: ``(height, width)`` to resize every image to instead (aspect not kept).
        tile: ``(height, width)`` of the tiles the model is trained on (``data.crop_scale: tile``,
            ``data.train_crop``): the resize is that of a tile, ``min(h, tile_h) x min(w,
            tile_w)`` px of the original image (:class:`mrae.data.augment.AugmentByKey`), so
            objects are scaled as the model sees them in a tile; None: the whole image's resize.

    Returns:
        ``(boxes, image_hw)`` in pixels of the resized images (with ``tile``: the whole image at
        the tile's scale), each axis scaled by new size / old size as torchvision scales the
        targets.
    """
    image_hw = np.asarray(image_hw, dtype=np.float64)
    if tile is not None:
        tile_hw = np.minimum(image_hw, np.asarray(tile, dtype=np.float64))
        resized, new_tile_hw = resize_boxes(boxes, tile_hw, min_size, max_size, fixed_size)
        return resized, image_hw * (new_tile_hw / tile_hw)
    if fixed_size is not None:
        new_hw = np.broadcast_to(np.asarray(fixed_size, dtype=np.float64), image_hw.shape)
    else:
        scale = np.minimum(min_size / image_hw.min(axis=1), max_size / image_hw.max(axis=1))
        new_hw = np.floor(image_hw * scale[:, None])
    ratio = new_hw / image_hw  # (K, 2): y, x
    out = np.asarray(boxes, dtype=np.float64) * np.concatenate([ratio[:, ::-1]] * 2, axis=1)
    return out, np.array(new_hw)


# ----------------------------------------------------------------------------- clustering


def _kmeans_1d(values: np.ndarray, k: int, seed: int, what: str) -> np.ndarray:
    """Sorted k-means centres of 1-D values (run on a weighted histogram, so 1M values take ms)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    keys, counts = np.unique(np.round(values / _QUANTUM).astype(np.int64), return_counts=True)
    if len(keys) < k:
        raise DataError(
            f"the boxes have {len(keys)} distinct {what}(s), fewer than the {k} clusters asked for; "
            f"ask for fewer or give more varied boxes"
        )
    km = KMeans(n_clusters=k, n_init=10, random_state=seed)
    with threadpool_limits(1):  # a few thousand points: OpenMP threads only add overhead
        km.fit((keys * _QUANTUM)[:, None], sample_weight=counts)
    return np.sort(km.cluster_centers_[:, 0])


def _round_size(size: float) -> float:
    return round(size, 1) if size < 16 else float(round(size))


def cluster_anchors(
    boxes_wh: np.ndarray, scales: int = 4, ratios: int = 3, seed: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Anchor sizes and aspect ratios that fit the boxes.

    Args:
        boxes_wh: (K, 2) box widths and heights in pixels (of the resized training images).
        scales: clusters of ``log(sqrt(w * h))``; ratios: clusters of ``log(h / w)``.
        seed: scikit-learn KMeans seed (10 initialisations).

    Returns:
        ``(sizes, aspect_ratios)``, ascending: sizes in pixels (1 decimal below 16 px, whole
        pixels from 16), ratios h/w with 2 decimals; as ``build_detector`` takes them.
    """
    wh = np.asarray(boxes_wh, dtype=np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2:
        raise DataError(f"boxes_wh must have shape (K, 2), got {wh.shape}")
    wh = wh[(wh > 0).all(axis=1) & np.isfinite(wh).all(axis=1)]
    if len(wh) == 0:
        raise DataError("no boxes of positive width and height to cluster")
    if scales < 1 or ratios < 1:
        raise ConfigError(f"scales and ratios must be >= 1, got {scales} and {ratios}")
    log_w, log_h = np.log(wh[:, 0]), np.log(wh[:, 1])
    size_centres = _kmeans_1d((log_w + log_h) / 2, scales, seed, "box scale")
    ratio_centres = _kmeans_1d(log_h - log_w, ratios, seed, "aspect ratio")
    sizes = tuple(_round_size(float(s)) for s in np.exp(size_centres))
    aspect = tuple(round(float(r), 2) for r in np.exp(ratio_centres))
    return sizes, aspect


# ----------------------------------------------------------------------------- scoring


def anchor_shapes(sizes, aspect_ratios) -> np.ndarray:
    """(A, 2) widths and heights of torchvision's anchors, size-major as AnchorGenerator orders
    them: ``w = size / sqrt(r)``, ``h = size * sqrt(r)``, each half rounded to whole pixels."""
    sizes = np.asarray(sizes, dtype=np.float64)
    ratios = np.asarray(aspect_ratios, dtype=np.float64)
    h_ratios = np.sqrt(ratios)
    ws = (sizes[:, None] / h_ratios[None, :]).ravel()
    hs = (sizes[:, None] * h_ratios[None, :]).ravel()
    return 2 * np.round(np.stack([ws, hs], axis=1) / 2)  # np.round halves to even, like torch


def _iou(dx, dy, bw, bh, aw, ah) -> np.ndarray:
    """IoU of boxes (bw, bh) centred at offset (dx, dy) from anchors (aw, ah); broadcasts."""
    ix = np.clip(np.minimum(dx + bw / 2, aw / 2) - np.maximum(dx - bw / 2, -aw / 2), 0, None)
    iy = np.clip(np.minimum(dy + bh / 2, ah / 2) - np.maximum(dy - bh / 2, -ah / 2), 0, None)
    inter = ix * iy
    return inter / (bw * bh + aw * ah - inter)


def mean_best_iou(boxes_wh: np.ndarray, anchors_wh: np.ndarray) -> float:
    """Mean over boxes (K, 2) of the best IoU of an anchor shape (A, 2) centred on the box."""
    wh = np.asarray(boxes_wh, dtype=np.float64)
    anchors = np.asarray(anchors_wh, dtype=np.float64)
    total = 0.0
    for s in range(0, len(wh), _CHUNK):
        w, h = wh[s:s + _CHUNK, :1], wh[s:s + _CHUNK, 1:]
        inter = np.minimum(w, anchors[:, 0]) * np.minimum(h, anchors[:, 1])
        total += float((inter / (w * h + anchors[:, 0] * anchors[:, 1] - inter)).max(axis=1).sum())
    return total / len(wh)


def grid_best_iou(boxes: np.ndarray, image_hw: np.ndarray, anchors_wh: np.ndarray,
                  stride: int) -> np.ndarray:
    """(K,) best IoU between each box and any anchor on the feature grid of `stride`.

    Args:
        boxes: (K, 4) ``[x, y, w, h]`` in pixels of the (resized) input image.
        image_hw: (K, 2) that image's height and width; the grid has
            ``ceil(side / 32) * 32 / stride`` points per side, at ``k * stride``.
        anchors_wh: (A, 2) anchor shapes (:func:`anchor_shapes`), centred at each grid point.

    For anchors centred at a point, the IoU only falls as the box centre moves away from it along
    either axis, so the nearest grid point on each axis is the best for every anchor shape.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    anchors = np.asarray(anchors_wh, dtype=np.float64)
    cells = np.ceil(np.asarray(image_hw, dtype=np.float64) / SIZE_DIVISIBLE) * (SIZE_DIVISIBLE / stride)
    centre = boxes[:, :2] + boxes[:, 2:] / 2  # x, y
    nearest = np.clip(np.round(centre / stride), 0, cells[:, ::-1] - 1) * stride
    offset = np.abs(centre - nearest).astype(np.float32)
    sizes = boxes[:, 2:].astype(np.float32)
    anchors = anchors.astype(np.float32)
    best = np.empty(len(boxes), dtype=np.float32)
    for s in range(0, len(boxes), _CHUNK):
        sl = slice(s, s + _CHUNK)
        iou = _iou(offset[sl, :1], offset[sl, 1:], sizes[sl, :1], sizes[sl, 1:], anchors[:, 0],
                   anchors[:, 1])
        best[sl] = iou.max(axis=1)
    return best


def match_shares(boxes: np.ndarray, image_hw: np.ndarray, anchors_wh: np.ndarray, stride: int,
                 thresholds: tuple[float, ...] = (0.7, 0.5)) -> dict[float, float]:
    """Share of boxes (0..1) whose best grid anchor (:func:`grid_best_iou`) has IoU >= each
    threshold. 0.7 is the RPN's positive threshold: boxes below it train only as the single
    low-quality match torchvision's Matcher allows."""
    best = grid_best_iou(boxes, image_hw, anchors_wh, stride)
    return {t: float(np.mean(best >= t)) for t in thresholds}


def compare(boxes: np.ndarray, image_hw: np.ndarray, anchor_sets: dict[str, tuple],
            strides=(4, 8, 16)) -> list[dict]:
    """One dict per anchor set: name, sizes, ratios, mean_best_iou, and match@0.7 / match@0.5
    per stride (keys ``(stride, threshold)``)."""
    rows = []
    for name, (sizes, ratios) in anchor_sets.items():
        shapes = anchor_shapes(sizes, ratios)
        row = {"name": name, "sizes": sizes, "ratios": ratios,
               "mean_best_iou": mean_best_iou(boxes[:, 2:], shapes)}
        for stride in strides:
            for t, share in match_shares(boxes, image_hw, shapes, stride).items():
                row[(stride, t)] = share
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], strides=(4, 8, 16)) -> str:
    head = ["anchors", "mean best IoU"]
    for s in strides:
        head += [f"IoU>=0.7 @ stride {s}", f"IoU>=0.5 @ stride {s}"]
    body = []
    for row in rows:
        cells = [row["name"], f"{row['mean_best_iou']:.3f}"]
        for s in strides:
            cells += [f"{100 * row[(s, 0.7)]:.1f}%", f"{100 * row[(s, 0.5)]:.1f}%"]
        body.append(cells)
    return write_table(head, body, align="l" + "r" * (len(head) - 1))


def yaml_snippet(sizes, ratios) -> str:
    """The ``model:`` section a training config accepts as is: the anchors in the section of every
    host that reads them (``model.faster_rcnn``, ``model.retinanet``)."""
    from mrae.modeling.registry import hosts_reading

    def fmt(values):
        return "[" + ", ".join(f"{v:g}" for v in values) + "]"

    sections = [f"  {host}:\n    anchor_sizes: {fmt(sizes)}\n    aspect_ratios: {fmt(ratios)}"
                for host in hosts_reading("anchor_sizes")]
    return "model:\n" + "\n".join(sections)


# ----------------------------------------------------------------------------- fitting


def check_strides(strides) -> None:
    """ConfigError unless every feature stride divides the padding multiple (32)."""
    if any(s <= 0 or SIZE_DIVISIBLE % s for s in strides):
        raise ConfigError(f"--strides must divide {SIZE_DIVISIBLE} (e.g. 4 8 16), got {list(strides)}")


class AnchorFit(NamedTuple):
    """What :func:`fit_anchors` found: sizes in pixels of the resized (model input) images."""

    sizes: tuple[float, ...]  # anchor sizes, ascending
    ratios: tuple[float, ...]  # aspect ratios h / w, ascending
    rows: list[dict]  # :func:`compare` of these anchors and torchvision's default
    boxes: np.ndarray  # (K, 4) [x, y, w, h] after the resize (boxes resized to nothing left out)
    original: np.ndarray  # (K0, 4) the boxes as the file gives them (clipped to their image)


def fit_anchors(
    ann_file: str | os.PathLike,
    min_size: float = 300,
    max_size: float = 512,
    fixed_size: tuple[int, int] | None = None,
    strides=(4, 8, 16),
    scales: int = 4,
    ratios: int = 3,
    seed: int = 0,
    tile: tuple[int, int] | None = None,
    native: bool = False,
) -> AnchorFit:
    """Anchors fitted to the boxes of a COCO instances JSON, as the model's resize shows them.

    ``tile``: the model trains on tiles of this size (:func:`resize_boxes`); ``native``: no
    resize at all, the boxes at their images' own scale whatever the images' sizes (the resize
    arguments are then not used).

    Loads the boxes (:func:`load_boxes`), resizes them (:func:`resize_boxes`), clusters them
    (:func:`cluster_anchors`) and scores the result beside torchvision's default anchors on the
    grids of ``strides`` (:func:`compare`).
    """
    check_strides(strides)
    original, image_hw = load_boxes(ann_file)
    if not native:
        boxes, image_hw = resize_boxes(original, image_hw, min_size, max_size, fixed_size, tile)
    else:
        boxes = original
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    boxes, image_hw = boxes[keep], image_hw[keep]
    sizes, aspect = cluster_anchors(boxes[:, 2:], scales, ratios, seed)
    rows = compare(boxes, image_hw, {
        "ours": (sizes, aspect),
        "torchvision default": (TORCHVISION_SIZES, TORCHVISION_RATIOS),
    }, strides)
    return AnchorFit(sizes, aspect, rows, boxes, original)


__all__ = [
    "TORCHVISION_RATIOS", "TORCHVISION_SIZES", "AnchorFit", "anchor_shapes", "check_strides",
    "cluster_anchors", "compare", "fit_anchors", "grid_best_iou", "load_boxes", "markdown_table", "match_shares",
    "mean_best_iou", "resize_boxes", "yaml_snippet",
]
