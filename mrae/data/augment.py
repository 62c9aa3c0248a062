"""Training augmentation decided by the sampler: horizontal flip and random fixed-size crops.

:class:`~mrae.engine.sampler.ResumableSampler` draws every random decision (a flip; with crops,
the crop's position as two numbers in [0, 1)) as a pure function of ``(seed, epoch, position)``,
and :class:`AugmentByKey` applies them. So a resumed run sees exactly the batches of an
uninterrupted one, whatever the number of loader workers.

Crops (``data.train_crop: [h, w]``, in pixels of the model's input), at one of two scales
(``data.crop_scale``):

- ``"image"`` (the default): the detector still sees objects at the scale of full-image training.
  The crop is cut from the original image at the size ``(h / s, w / s)``, where ``s`` is the
  resize factor the model applies to the *full* image (``min(min_size / short side, max_size /
  long side)``, torchvision's rule), and the target carries ``s`` as ``"scale"`` so that
  :class:`mrae.modeling.transform.ScaleAwareTransform` resizes the crop by ``s`` instead of fitting
  it to ``min_size``.
- ``"tile"`` (sliced training): the crop is ``h x w`` pixels of the original image, a tile as
  sliced inference (``--slice HxW``, :mod:`mrae.evaluation.slicing`) cuts it, and the model resizes
  it as it resizes any image (a tile of the model's input size is seen at 1:1); the target has no
  ``"scale"``. Objects are seen at the scale of sliced inference.

A side of the image no larger than the crop's is used whole (an image smaller than the crop: the
whole image). Evaluation and prediction always see the full image.

Boxes cut by the crop (``data.crop_min_visible``, :func:`crop_target`): by default a box is kept,
clipped to the crop, when at least :data:`KEEP_FRACTION` of its area lies inside, and boxes cut
further are dropped (they become background). With ``crop_min_visible = f`` in (0, 1], a box is
kept, clipped, when at least ``f`` of its area lies inside, and the visible part of a box with less
inside is added to the target's ``"ignore_boxes"``: training counts it neither as an object nor as
background (:mod:`mrae.modeling.ignore`, with ``model.ignore_iof_thr`` on).

A target's ``"ignore_boxes"`` (crowds and ignore regions, [M, 4] xyxy px) are flipped with the
image and clipped to the crop: whatever part of a region lies inside stays ignored, however small;
regions wholly outside are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from mrae.choices import CROP_SCALES

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


def _has_area(boxes: torch.Tensor) -> torch.Tensor:
    """[K] bool: which of ``boxes`` [K, 4] xyxy have a positive width and height."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def crop_target(
    target: dict[str, Any], x0: float, y0: float, x1: float, y1: float,
    min_visible: float | None = None,
) -> dict[str, Any]:
    """``target`` with its boxes (xyxy [K, 4]) clipped to the window and shifted to its origin.

    ``min_visible`` None: boxes with less than :data:`KEEP_FRACTION` of their area inside are
    dropped. A fraction in (0, 1]: boxes with at least that share inside are kept (clipped); the
    clipped part of each box with less (but some area) inside is appended to ``"ignore_boxes"``
    (created if missing). Its ``"ignore_boxes"`` ([M, 4]) are clipped and shifted too; only those
    wholly outside are dropped."""
    boxes = target["boxes"]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = _clip(boxes, x0, y0, x1, y1)
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    fraction = KEEP_FRACTION if min_visible is None else min_visible
    keep = inside >= fraction * area.clamp(min=1e-6)
    origin = torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    shifted = clipped[keep] - origin
    out = {**target, "boxes": shifted}
    if "ignore_boxes" in target:
        regions = _clip(target["ignore_boxes"], x0, y0, x1, y1)
        out["ignore_boxes"] = regions[_has_area(regions)] - origin.to(regions.dtype)
    if min_visible is not None:
        cut = ~keep & _has_area(clipped)
        regions = out.get("ignore_boxes", boxes.new_zeros((0, 4)))
        out["ignore_boxes"] = torch.cat([regions, (clipped[cut] - origin).to(regions.dtype)])
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
        min_visible: ``data.crop_min_visible``: None (boxes under :data:`KEEP_FRACTION` inside a
            crop are dropped) or the share of a box's area inside a crop that keeps it; the visible
            part of a box with less inside becomes an ignore box (:func:`crop_target`).
        crop_scale: ``data.crop_scale``: ``"image"`` (the crop at the full image's scale) or
            ``"tile"`` (``crop`` pixels of the original image, resized as the model resizes a tile).

    The item is the image mirrored left-right if ``flip``, then (with ``crop`` and a key that
    carries ``u, v``) cropped at the relative position ``(u, v)``; with ``crop_scale="image"`` a
    cropped target has ``"scale"`` (a float: the full image's resize factor).
    """

    def __init__(
        self, dataset: Dataset, crop: Sequence[int] | None = None, min_size: int = 300,
        max_size: int = 512, min_visible: float | None = None, crop_scale: str = "image",
    ) -> None:
        if crop_scale not in CROP_SCALES:
            raise ValueError(f"crop_scale must be one of {CROP_SCALES}, got {crop_scale!r}")
        if min_visible is not None and not 0 < min_visible <= 1:
            raise ValueError(f"min_visible must be in (0, 1] or None, got {min_visible!r}")
        self.dataset = dataset
        self.crop = tuple(crop) if crop is not None else None
        self.min_size = min_size
        self.max_size = max_size
        self.min_visible = min_visible
        self.crop_scale = crop_scale

    @classmethod
    def from_config(cls, dataset: Dataset, cfg: Any) -> AugmentByKey:
        """The training view of ``dataset`` that the config's ``data`` and ``model`` sections ask for
        (``data.train_crop``, ``data.crop_min_visible``, ``data.crop_scale``, the model's resize)."""
        d, m = cfg.data, cfg.model
        return cls(
            dataset, crop=d.train_crop, min_size=m.min_size, max_size=m.max_size,
            min_visible=d.crop_min_visible, crop_scale=d.crop_scale,
        )

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
        if self.crop_scale == "tile":
            scale = None
            ch, cw = min(height, self.crop[0]), min(width, self.crop[1])
        else:
            scale = resize_scale(height, width, self.min_size, self.max_size)
            ch = min(height, round(self.crop[0] / scale))
            cw = min(width, round(self.crop[1] / scale))
        y0 = int(u * (height - ch + 1))
        x0 = int(v * (width - cw + 1))
        image = image[:, y0 : y0 + ch, x0 : x0 + cw]
        target = crop_target(target, float(x0), float(y0), float(x0 + cw), float(y0 + ch),
                             min_visible=self.min_visible)
        if scale is not None:
            target["scale"] = scale
        return image, target
