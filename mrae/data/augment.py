"""Training augmentation decided by the sampler: horizontal flip and random fixed-size crops.

:class:`~mrae.engine.sampler.ResumableSampler` draws every random decision (a flip; with crops,
the crop's position as two numbers in [0, 1)) as a pure function of ``(seed, epoch, position)``,
and :class:`AugmentByKey` applies them. So a resumed run sees exactly the batches of an
uninterrupted one, whatever the number of loader workers.

Crops (``data.train_crop: [h, w]``, in pixels of the model's input): the detector still sees
objects at the scale of full-image training. The crop is cut from the original image at the size
``(h / s, w / s)``, where ``s`` is the resize factor the model applies to the *full* image
(``min(min_size / short side, max_size / long side)``, torchvision's rule), and the target carries
``s`` as ``"scale"`` so that :class:`mrae.modeling.detector.ScaleAwareTransform` resizes the crop by ``s``
instead of fitting it to ``min_size``. A box is kept, clipped to the crop, when at least
:data:`KEEP_FRACTION` of its area lies inside; boxes cut further are dropped. Images no larger
than the crop are used whole. Evaluation and prediction always see the full image.

A target's ``"ignore_boxes"`` (crowds and ignore regions, [M, 4] xyxy px) are flipped with the
image and clipped to the crop: whatever part of a region lies inside stays ignored, however small;
regions wholly outside are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

KEEP_FRACTION = 0.5  # a cropped box is kept when at least this share of its area is inside


def resize_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    """The factor torchvision's detection transform resizes an ``height`` x ``width`` image by."""
    short, long = min(height, width), max(height, width)
    return min(min_size / short, max_size / long)


def _clip(boxes: torch.Tensor, x0: float, y0: float, x1: float, y1: float) -> torch.Tensor:
    """``boxes`` [K, 4] xyxy clipped to the window (not shifted)."""
    return torch.stack([
        boxes[:, 0].clamp(x0, x1), boxes[:, 1].clamp(y0, y1),
        boxes[:, 2].clamp(x0, x1), boxes[:, 3].clamp(y0, y1),
    ], dim=1)  # fmt: skip


def crop_target(target: dict[str, Any], x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """``target`` with its boxes (xyxy [K, 4]) clipped to the window and shifted to its origin;
    boxes with less than :data:`KEEP_FRACTION` of their area inside are dropped. Its
    ``"ignore_boxes"`` ([M, 4]) are clipped and shifted too; only those wholly outside are dropped."""
    boxes = target["boxes"]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = _clip(boxes, x0, y0, x1, y1)
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = inside >= KEEP_FRACTION * area.clamp(min=1e-6)
    origin = torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    shifted = clipped[keep] - origin
    out = {**target, "boxes": shifted}
    if "ignore_boxes" in target:
        regions = _clip(target["ignore_boxes"], x0, y0, x1, y1)
        left = (regions[:, 2] > regions[:, 0]) & (regions[:, 3] > regions[:, 1])
        out["ignore_boxes"] = regions[left] - origin.to(regions.dtype)
    for key in ("labels", "area", "iscrowd"):
        if key in target and torch.is_tensor(target[key]) and len(target[key]) == len(boxes):
            out[key] = target[key][keep]
    return out


def _mirror(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """``boxes`` [K, 4] xyxy px of an image ``width`` px wide, mirrored left-right."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


class AugmentByKey(Dataset):
    """A detection dataset indexed by the sampler's keys ``(index, flip)`` or ``(index, flip, u, v)``.

    ``dataset[i]`` must be ``(image FloatTensor[3, H, W], target)`` with ``target["boxes"]``
    FloatTensor[K, 4] xyxy in pixels, without a random transform of its own.

    Args:
        dataset: the training dataset.
        crop: ``(h, w)`` of the crop in model-input pixels, or None (full images).
        min_size, max_size: the model's resize (to turn ``crop`` into original pixels).

    The item is the image mirrored left-right if ``flip``, then (with ``crop`` and a key that
    carries ``u, v``) cropped at the relative position ``(u, v)``; a cropped target has
    ``"scale"`` (a float: the full image's resize factor).
    """

    def __init__(
        self, dataset: Dataset, crop: Sequence[int] | None = None, min_size: int = 300,
        max_size: int = 512,
    ) -> None:
        self.dataset = dataset
        self.crop = tuple(crop) if crop is not None else None
        self.min_size = min_size
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple) -> tuple[torch.Tensor, dict[str, Any]]:
        index, flip, *position = key
        image, target = self.dataset[index]
        if flip:
            width = image.shape[-1]
            image = image.flip(-1)
            target = {**target, "boxes": _mirror(target["boxes"], width)}
            if "ignore_boxes" in target:
                target["ignore_boxes"] = _mirror(target["ignore_boxes"], width)
        if self.crop is not None and position:
            image, target = self._crop(image, target, *position)
        return image, target

    def _crop(self, image: torch.Tensor, target: dict[str, Any], u: float, v: float):
        height, width = image.shape[-2:]
        scale = resize_scale(height, width, self.min_size, self.max_size)
        ch = min(height, round(self.crop[0] / scale))
        cw = min(width, round(self.crop[1] / scale))
        y0 = int(u * (height - ch + 1))
        x0 = int(v * (width - cw + 1))
        image = image[:, y0 : y0 + ch, x0 : x0 + cw]
        target = crop_target(target, float(x0), float(y0), float(x0 + cw), float(y0 + ch))
        target["scale"] = scale
        return image, target
