"""Sliced inference for large images (what SAHI does for other detectors), built in.

A 4000x3000 drone picture resized to the model's 512x300 input shrinks a 30 px car to 4 px. Sliced
inference cuts the image, **at its native resolution**, into overlapping tiles
(:func:`tile_grid`), lets the detector (whose own transform resizes each tile to its input size)
find the objects in each tile, maps every box back by its tile's offset, and merges the duplicates
that an object seen by two overlapping tiles gives (:func:`sliced_detect`):

- ``merge="nms"``: torchvision's ``batched_nms`` per class at ``match_threshold`` IoU: of two
  matching boxes the lower-scoring one is dropped;
- ``merge="greedy"``: SAHI's greedy non-maximum *merging* (GREEDYNMM): boxes are taken best
  first; each one absorbs every not yet taken box of its class that matches it
  (``match_metric`` ``"ios"``, intersection over the smaller box, or ``"iou"``, above
  ``match_threshold``) and becomes the union of their boxes, with the best score. An object cut
  in two by a tile border thus comes back whole.

Options: ``full_pass`` adds one detection pass over the whole (resized) image whose detections
join the merge, for objects larger than a tile; ``drop_cut`` drops tile detections that touch an
inner tile border (within :data:`EDGE_MARGIN` px), i.e. objects a tile saw only in part (with an
overlap at least the largest object's size, another tile sees each of them whole).

The tile grid and :class:`SliceOptions` import no torch; ``mrae predict`` and ``mrae eval`` take
the options as ``--slice HxW --overlap F --merge nms|greedy --match-metric ios|iou
--match-threshold T --full-pass --drop-cut --slice-batch N`` (:mod:`mrae.commands.slicing_flags`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mrae.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

#: How to merge the detections of overlapping tiles.
MERGES: tuple[str, ...] = ("nms", "greedy")
#: What greedy merging compares: intersection over the smaller box's area, or over the union.
MATCH_METRICS: tuple[str, ...] = ("ios", "iou")
#: A tile box this close (px) to an inner tile border counts as cut by it (``drop_cut``).
EDGE_MARGIN = 1.0

Tile = tuple[int, int, int, int]  # (y0, x0, y1, x1): rows y0..y1-1, columns x0..x1-1, native px
Detector = Callable[[list["Tensor"]], list[dict[str, "Tensor"]]]


@dataclass(frozen=True)
class SliceOptions:
    """Settings of sliced inference; see the module docstring. Sizes in native image pixels."""

    tile_h: int
    tile_w: int
    overlap: float = 0.2  # fraction of a tile's side shared with its neighbour, in [0, 1)
    merge: str = "nms"  # "nms" or "greedy"
    match_metric: str = "ios"  # greedy only: "ios" or "iou" (nms always uses IoU)
    match_threshold: float = 0.5  # boxes matching above this are duplicates, in [0, 1]
    full_pass: bool = False  # also detect on the whole image; its boxes join the merge
    drop_cut: bool = False  # drop tile boxes touching an inner tile border
    batch_size: int = 4  # tiles per forward pass

    def __post_init__(self) -> None:
        for name in ("tile_h", "tile_w", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"slicing: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"--overlap must be in [0, 1), got {self.overlap}")
        if self.merge not in MERGES:
            raise ConfigError(f"--merge must be one of {', '.join(MERGES)}, got {self.merge!r}")
        if self.match_metric not in MATCH_METRICS:
            raise ConfigError(
                f"--match-metric must be one of {', '.join(MATCH_METRICS)}, got {self.match_metric!r}"
            )
        if not 0.0 <= self.match_threshold <= 1.0:
            raise ConfigError(f"--match-threshold must be in [0, 1], got {self.match_threshold}")


def _starts(size: int, tile: int, overlap: float) -> list[int]:
    """Tile starts along one axis of ``size`` px: step ``tile - round(overlap * tile)`` (at least
    1), the last tile shifted to end at the border; one tile at 0 when ``size <= tile``."""
    if size <= tile:
        return [0]
    step = max(1, tile - round(overlap * tile))
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def tile_grid(height: int, width: int, tile_h: int, tile_w: int, overlap: float) -> list[Tile]:
    """Overlapping tiles covering a ``height`` x ``width`` image, row by row.

    Neighbouring tiles share ``round(overlap * tile)`` px (the last row and column, shifted to end
    at the border, may share more); a side smaller than the tile gives one tile of the image's
    size there. Returns ``[(y0, x0, y1, x1), ...]`` in native pixels, ends exclusive.
    """
    for name, value in (("height", height), ("width", width), ("tile_h", tile_h), ("tile_w", tile_w)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ConfigError(f"tile_grid: {name} must be a positive integer, got {value!r}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"--overlap must be in [0, 1), got {overlap}")
    rows = [(y, min(y + tile_h, height)) for y in _starts(height, tile_h, overlap)]
    cols = [(x, min(x + tile_w, width)) for x in _starts(width, tile_w, overlap)]
    return [(y0, x0, y1, x1) for y0, y1 in rows for x0, x1 in cols]


#: The most tiles sliced inference runs on one image: past it a small ``--slice`` on a large image
#: (1x1 px on 2048x1536: over 3 million tiles) would run for hours, so it is refused up front.
MAX_TILES = 4096


def _axis_count(size: int, tile: int, overlap: float) -> int:
    """``len(_starts(size, tile, overlap))`` without building the list."""
    if size <= tile:
        return 1
    step = max(1, tile - round(overlap * tile))
    return -(-(size - tile) // step) + 1


def tile_count(height: int, width: int, options: SliceOptions) -> int:
    """How many tiles :func:`tile_grid` makes for a ``height`` x ``width`` image."""
    return (_axis_count(height, options.tile_h, options.overlap)
            * _axis_count(width, options.tile_w, options.overlap))


def check_tile_count(height: int, width: int, options: SliceOptions, what: str) -> None:
    """ConfigError naming ``what`` (an image) when it would take more than :data:`MAX_TILES` tiles."""
    count = tile_count(height, width, options)
    if count > MAX_TILES:
        raise ConfigError(
            f"{what}: --slice {options.tile_h}x{options.tile_w} with --overlap {options.overlap:g} "
            f"makes {count:,} tiles of this {width}x{height} px image, over the limit of "
            f"{MAX_TILES} an image; give larger tiles or a smaller --overlap")


def parse_tile_size(text: str) -> tuple[int, int]:
    """``"HxW"`` (e.g. ``"300x512"``) -> ``(H, W)`` positive ints; ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ConfigError(f"--slice must be HxW with positive integers in px (e.g. 300x512), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def sliced_detect(
    model: Detector,
    image: Tensor,
    options: SliceOptions,
    max_detections: int | None = None,
) -> dict[str, Tensor]:
    """Detect on the tiles of one image and merge; the model's own output format.

    Args:
        model: a detector in eval mode: ``list[Tensor[3, h, w]] -> list[{"boxes" [D, 4] xyxy px of
            its input, "scores" [D], "labels" [D]}]`` (a torchvision detector resizes each tile
            with its own transform and maps the boxes back to the tile).
        image: Tensor[3, H, W], already on the model's device.
        options: the tiles, the merge, the full pass.
        max_detections: keep the best this many after merging; None: the model's per-image cap
            when it has one (:func:`mrae.modeling.caps.detections_per_image`, every host), else all.

    Returns:
        ``{"boxes": [N, 4] xyxy in the image's pixels, "scores": [N], "labels": [N] int64}``,
        best first.
    """
    import torch

    height, width = int(image.shape[-2]), int(image.shape[-1])
    check_tile_count(height, width, options, "sliced inference")
    tiles = tile_grid(height, width, options.tile_h, options.tile_w, options.overlap)
    boxes, scores, labels = [], [], []
    for first in range(0, len(tiles), options.batch_size):
        batch = tiles[first:first + options.batch_size]
        outputs = model([image[:, y0:y1, x0:x1] for y0, x0, y1, x1 in batch])
        for (y0, x0, y1, x1), output in zip(batch, outputs, strict=True):
            tile_boxes = output["boxes"].reshape(-1, 4).float()
            keep = torch.ones(len(tile_boxes), dtype=torch.bool, device=tile_boxes.device)
            if options.drop_cut:
                keep = ~_touches_inner_border(tile_boxes, (y0, x0, y1, x1), height, width)
            offset = torch.tensor([x0, y0, x0, y0], dtype=tile_boxes.dtype, device=tile_boxes.device)
            boxes.append(tile_boxes[keep] + offset)
            scores.append(output["scores"].reshape(-1)[keep].float())
            labels.append(output["labels"].reshape(-1)[keep].long())
    if options.full_pass:
        whole = model([image])[0]
        boxes.append(whole["boxes"].reshape(-1, 4).float())
        scores.append(whole["scores"].reshape(-1).float())
        labels.append(whole["labels"].reshape(-1).long())

    merged = merge_detections(
        torch.cat(boxes), torch.cat(scores), torch.cat(labels),
        merge=options.merge, match_metric=options.match_metric, threshold=options.match_threshold,
    )
    if max_detections is None:
        from mrae.modeling.caps import detections_per_image

        max_detections = detections_per_image(model)
    if max_detections is not None:
        merged = {k: v[:max_detections] for k, v in merged.items()}
    return merged


def _touches_inner_border(boxes: Tensor, tile: Tile, height: int, width: int) -> Tensor:
    """[D] bool: which tile boxes [D, 4] (tile px) lie within EDGE_MARGIN of a tile border that is
    not also the image's border."""
    y0, x0, y1, x1 = tile
    cut = boxes.new_zeros(len(boxes), dtype=bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= EDGE_MARGIN
    if y0 > 0:
        cut |= boxes[:, 1] <= EDGE_MARGIN
    if x1 < width:
        cut |= boxes[:, 2] >= (x1 - x0) - EDGE_MARGIN
    if y1 < height:
        cut |= boxes[:, 3] >= (y1 - y0) - EDGE_MARGIN
    return cut


def merge_detections(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    merge: str = "nms",
    match_metric: str = "ios",
    threshold: float = 0.5,
) -> dict[str, Tensor]:
    """Merge duplicate detections of the same class; see the module docstring.

    Args:
        boxes: [N, 4] xyxy px; scores: [N]; labels: [N].
        merge: ``"nms"`` (batched_nms per class at IoU ``threshold``; ``match_metric`` unused) or
            ``"greedy"`` (SAHI's GREEDYNMM: union of matched boxes, best score).
        match_metric: greedy only: ``"ios"`` or ``"iou"``.
        threshold: two boxes match when their metric is above this.

    Returns:
        ``{"boxes" [M, 4], "scores" [M], "labels" [M]}``, best first.
    """
    import numpy as np
    import torch
    from torchvision.ops import batched_nms, box_area, box_iou

    if merge not in MERGES:
        raise ConfigError(f"--merge must be one of {', '.join(MERGES)}, got {merge!r}")
    if merge == "nms":
        keep = batched_nms(boxes, scores, labels, threshold)  # sorted by score, best first
        return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}
    if match_metric not in MATCH_METRICS:
        raise ConfigError(f"--match-metric must be one of {', '.join(MATCH_METRICS)}, got {match_metric!r}")

    order = torch.argsort(scores, descending=True, stable=True)
    boxes, scores, labels = boxes[order], scores[order], labels[order]
    iou = box_iou(boxes, boxes)  # [N, N]
    if match_metric == "ios":
        # intersection = IoU * (a + b) / (1 + IoU); over the smaller area
        areas = box_area(boxes)
        total = areas[:, None] + areas[None, :]
        inter = iou * total / (1.0 + iou)
        match = inter / torch.minimum(areas[:, None], areas[None, :]).clamp(min=1e-9)
    else:
        match = iou
    matches = ((match > threshold) & (labels[:, None] == labels[None, :])).cpu().numpy()
    corners = boxes.detach().cpu().numpy()
    taken = np.zeros(len(corners), dtype=bool)
    out_boxes, kept = [], []
    for i in range(len(corners)):  # best first: each kept box absorbs its not yet taken matches
        if taken[i]:
            continue
        group = matches[i] & ~taken
        group[i] = True
        taken |= group
        members = corners[group]
        out_boxes.append(np.concatenate([members[:, :2].min(0), members[:, 2:].max(0)]))
        kept.append(i)
    index = torch.tensor(kept, dtype=torch.long, device=boxes.device)
    merged = torch.from_numpy(np.stack(out_boxes) if out_boxes else np.zeros((0, 4), dtype=corners.dtype))
    merged = merged.to(device=boxes.device, dtype=boxes.dtype)
    return {"boxes": merged, "scores": scores[index], "labels": labels[index]}


def describe(options: SliceOptions) -> str:
    """One line for logs and records: ``tiles 300x512, overlap 0.2, merge nms@0.5, full pass``."""
    merge = options.merge if options.merge == "nms" else f"greedy {options.match_metric}"
    text = f"tiles {options.tile_h}x{options.tile_w}, overlap {options.overlap:g}, merge {merge}@{options.match_threshold:g}"
    if options.full_pass:
        text += ", full pass"
    if options.drop_cut:
        text += ", cut boxes dropped"
    return text


def as_record(options: SliceOptions | None) -> dict[str, object] | None:
    """The options as a JSON-able dict (for predict.json and the eval metrics file)."""
    if options is None:
        return None
    return {
        "tile": [options.tile_h, options.tile_w], "overlap": options.overlap, "merge": options.merge,
        "match_metric": options.match_metric, "match_threshold": options.match_threshold,
        "full_pass": options.full_pass, "drop_cut": options.drop_cut, "batch_size": options.batch_size,
    }


__all__: Sequence[str] = (
    "MERGES", "MATCH_METRICS", "SliceOptions", "tile_grid", "parse_tile_size", "sliced_detect",
    "merge_detections", "describe", "as_record",
)
