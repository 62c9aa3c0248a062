"""A COCO detection dataset in the form torchvision's detection models take, and its loader.

``CocoDetection(images_dir, ann_file, train=...)[i]`` is ``(image, target)``:

- ``image``: FloatTensor [3, H, W] in [0, 1] (:func:`mrae.data.images.read_image`: EXIF
  orientation applied; grayscale, palette, alpha, CMYK, 16-bit and TIFF files become RGB);
- ``target``: ``{"boxes": FloatTensor [K, 4] xyxy in pixels, "labels": Int64Tensor [K] in 1..C,
  "ignore_boxes": FloatTensor [M, 4] xyxy in pixels, "image_id": int}``: the objects in
  ``boxes``; the crowd annotations and ignore regions (``iscrowd=1``; an annotation with
  ``"ignore": 1`` is read as ``iscrowd=1`` by :func:`mrae.data.validate.load_coco_json`) in
  ``ignore_boxes``, which training neither matches nor counts as background (:mod:`mrae.modeling.ignore`)
  and the transforms flip, crop and resize as they do ``boxes``.

Labels are contiguous, 1..C in the sorted order of the COCO category ids (0 is torchvision's
background); ``label_to_cat`` maps them back for writing results in COCO category ids.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import tv_tensors

from mrae.data.images import exif_orientation, read_image
from mrae.data.validate import load_coco_json
from mrae.errors import ConfigError, DataError

Target = dict[str, Any]
Transform = Callable[[tv_tensors.Image, Target], tuple[tv_tensors.Image, Target]]


class CocoDetection(Dataset):
    """Images of a folder with the boxes of a COCO instances JSON.

    Args:
        images_dir: folder that the images' ``file_name`` values are relative to.
        ann_file: COCO instances JSON; checked by :func:`mrae.data.validate.load_coco_json`
            (boxes outside the image are clipped, empty ones dropped, one warning line).
        train: the training set: ``skip_empty`` by default. Training augments through
            :class:`mrae.data.augment.AugmentByKey` (flips and crops drawn by the sampler), not here.
        skip_empty: leave out images without a non-crowd box; default: ``train``.
        transforms: a ``torchvision.transforms.v2`` transform of ``(image, target)`` (image a
            ``tv_tensors.Image``, boxes ``tv_tensors.BoundingBoxes``); none by default.

    Attributes:
        coco: the pycocotools ``COCO`` index of the checked annotations (the evaluation's ground truth).
        ids: image ids in the dataset's order (sorted).
        cat_ids: COCO category ids, sorted; label ``k`` is ``cat_ids[k - 1]``.
        label_to_cat, cat_to_label: contiguous label <-> COCO category id.
        class_names: category names; ``class_names[k - 1]`` is label ``k``'s.
        num_classes: number of object classes, without the background.
    """

    def __init__(
        self,
        images_dir: str | PathLike[str],
        ann_file: str | PathLike[str],
        train: bool = False,
        *,
        skip_empty: bool | None = None,
        transforms: Transform | None = None,
    ) -> None:
        self.images_dir = Path(images_dir)
        self.ann_file = Path(ann_file)
        self.train = train
        skip_empty = train if skip_empty is None else skip_empty
        self.transforms = transforms

        self.coco = _coco_index(load_coco_json(self.ann_file))
        self.cat_ids = sorted(self.coco.cats)
        self.cat_to_label = {cat_id: label for label, cat_id in enumerate(self.cat_ids, start=1)}
        self.label_to_cat = {label: cat_id for cat_id, label in self.cat_to_label.items()}
        self.class_names = [self.coco.cats[cat_id]["name"] for cat_id in self.cat_ids]
        self.num_classes = len(self.cat_ids)

        ids = sorted(self.coco.imgs)
        if skip_empty:
            ids = [i for i in ids if any(not a["iscrowd"] for a in self.coco.imgToAnns.get(i, ()))]
        if not ids:
            what = "an image with a non-crowd box" if skip_empty else "an image"
            raise DataError(
                f"{self.ann_file}: the dataset is empty after filtering; it needs at least {what}"
            )
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image_id = self.ids[index]
        image = tv_tensors.Image(self.load_image(image_id))
        target = self.load_target(image_id)
        for key in ("boxes", "ignore_boxes"):
            target[key] = tv_tensors.BoundingBoxes(
                target[key], format="XYXY", canvas_size=tuple(image.shape[-2:])
            )
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        for key in ("boxes", "ignore_boxes"):
            target[key] = target[key].as_subclass(torch.Tensor)
        return image.as_subclass(torch.Tensor), target

    def load_image(self, image_id: int) -> torch.Tensor:
        """The image of ``image_id`` as FloatTensor [3, H, W] in [0, 1], EXIF orientation applied.

        Read by :func:`mrae.data.images.read_image` (16-bit, palette, alpha, CMYK and TIFF files
        mapped to RGB as it says). Raises DataError when the file is missing or unreadable, or
        its size is not the JSON's.
        """
        info = self.coco.imgs[image_id]
        path = self.images_dir / info["file_name"]
        try:
            image = read_image(path)
        except DataError as error:
            raise DataError(
                f"{error} [image id {image_id} of {self.ann_file}; images folder {self.images_dir}]"
            ) from None
        height, width = image.shape[-2:]
        expected = (info["width"], info["height"])
        if (width, height) != expected:
            orientation = exif_orientation(path)
            hint = (
                f"; the file is EXIF-rotated (orientation {orientation}): give the size and boxes "
                "as the image is displayed"
                if orientation != 1
                else ""
            )
            raise DataError(
                f"{path}: image id {image_id} is {width} x {height} px but "
                f"{self.ann_file} says {expected[0]} x {expected[1]}{hint}"
            )
        return image

    def load_target(self, image_id: int) -> Target:
        """The target of ``image_id`` without transforms: boxes xyxy [K, 4], labels [K],
        ignore_boxes xyxy [M, 4] (crowds and ignore regions), image_id."""
        all_anns = self.coco.imgToAnns.get(image_id, ())
        anns = [a for a in all_anns if not a["iscrowd"]]
        labels = torch.tensor(
            [self.cat_to_label[a["category_id"]] for a in anns], dtype=torch.int64
        )
        return {
            "boxes": _xyxy(anns),
            "labels": labels,
            "ignore_boxes": _xyxy([a for a in all_anns if a["iscrowd"]]),
            "image_id": image_id,
        }


def _xyxy(anns: Sequence[dict[str, Any]]) -> torch.Tensor:
    """The annotations' ``bbox`` (xywh px) as FloatTensor [K, 4] xyxy px."""
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def _coco_index(data: dict[str, Any]) -> COCO:
    """A pycocotools COCO over an already loaded dict (its index building prints; keep it quiet)."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def collate(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[list[torch.Tensor], list[Target]]:
    """Batch of ``(image, target)`` -> ``(images, targets)`` lists, as torchvision's detectors take."""
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return list(images), list(targets)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a loader worker from the torch seed the loader gave it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int = 0,
    sampler: Sampler | None = None,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` with :func:`collate`; the order and augmentation repeat by seed.

    The loader's generator is seeded with ``seed``: it draws the shuffle order and each worker's
    torch seed (hence any random transform's draws), and :func:`seed_worker` passes that seed on
    to numpy and random. With ``workers=0`` random transforms use the main process's torch RNG
    (seed it with torch.manual_seed).
    ``sampler`` replaces ``shuffle`` (give one or the other).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    if sampler is not None and shuffle:
        raise ConfigError("give a sampler or shuffle=True, not both")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        generator=generator,
        worker_init_fn=seed_worker,
        persistent_workers=workers > 0,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
