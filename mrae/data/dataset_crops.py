"""Classification crops cut from a labelled dataset: the data of an offline pretraining on real images.

The synthetic crops (:mod:`mrae.data.crops`) teach the trunk shapes; a user with any labelled
dataset and no network can do better for their own objects: the same task on their images. From a
COCO instances JSON and its images folder, every labelled object (``iscrowd`` 0) gives one square
crop at native resolution, its box centre within ``jitter`` px of the crop's centre, labelled with
its category (``0 .. C-1`` in the file's ``categories`` order); each image gives
``background_per_image`` background crops (label ``C``), whose centre is at least
``min(size / 2, 16)`` px from every box, ignore regions included. A crop that would leave the
image is taken where it fits (shifted inwards); an image smaller than the crop is padded with
black at its bottom and right.

The images are split once, in a seeded order: the first ``val_images`` give the held-out crops
(the pretraining's accuracy), the next ``train_images`` the training crops. Pass the training
split's annotations: the trunk then never sees a validation image. Image ``i``'s crops depend on
``(seed, i)`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mrae.data.crops import background_centres, cut_windows
from mrae.data.images import read_image
from mrae.data.validate import load_coco_json
from mrae.errors import ConfigError, DataError

BACKGROUND = "background"
#: The random stream of this module's draws (the split, then each image's), apart from others'.
_STREAM = 3


def crop_classes(data: dict[str, Any]) -> tuple[str, ...]:
    """The crops' class names: the dataset's categories in file order, then background."""
    return (*(str(c["name"]) for c in data["categories"]), BACKGROUND)


def split_images(data: dict[str, Any], seed: int, train_images: int,
                 val_images: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, val)`` image dicts: a seeded order of the file's images, val first."""
    images = sorted(data["images"], key=lambda image: image["id"])
    if len(images) < 2:
        raise DataError(f"{len(images)} image(s) in the annotations; the pretraining needs at "
                        "least 2 (one held out)")
    order = np.random.default_rng((seed, _STREAM)).permutation(len(images))
    n_val = min(val_images, len(images) - 1)
    val = [images[i] for i in order[:n_val]]
    train = [images[i] for i in order[n_val:n_val + train_images]]
    return train, val


def image_crops(pixels: np.ndarray, boxes: np.ndarray, labels: np.ndarray, avoid: np.ndarray,
                rng: np.random.Generator, size: int, jitter: float,
                background_per_image: int, background_label: int) -> tuple[np.ndarray, np.ndarray]:
    """The crops of one image: (uint8 [K, size, size, 3], int64 [K]).

    ``pixels`` uint8 [H, W, 3]; ``boxes`` [N, 4] xywh of the objects with ``labels`` [N];
    ``avoid`` [M, 4] xywh of every box a background crop's centre keeps away from.
    """
    height, width = pixels.shape[:2]
    if height < size or width < size:
        padded = np.zeros((max(height, size), max(width, size), 3), dtype=np.uint8)
        padded[:height, :width] = pixels
        pixels, height, width = padded, padded.shape[0], padded.shape[1]
    centres = [(x + w / 2 + rng.uniform(-jitter, jitter), y + h / 2 + rng.uniform(-jitter, jitter),
                int(label)) for (x, y, w, h), label in zip(boxes, labels, strict=True)]  # fmt: skip
    # the draws' order: each object's jitter (above), then the background centres
    background = background_centres(avoid, rng, size, width, height, background_per_image)
    centres += [(cx, cy, background_label) for cx, cy in background]
    return cut_windows(pixels, centres, size)


def dataset_crops(
    annotations: str | Path, images: str | Path, *, seed: int = 0, train_images: int = 800,
    val_images: int = 100, size: int = 32, jitter: float = 4.0, background_per_image: int = 3,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Training and held-out crops of a COCO dataset (see the module docstring).

    Returns:
        ``(train_x, train_y, val_x, val_y, classes)``: uint8 Tensors [K, 3, size, size], int64
        labels [K] indexing ``classes`` (the categories, then background).
    """
    if size < 16 or size > 300:
        raise ConfigError(f"pretrain.crop_size={size} is not valid; give 16..300 px")
    data = load_coco_json(annotations)
    classes = crop_classes(data)
    if len(classes) < 2:
        raise DataError(f"{annotations}: no categories; the pretraining needs labelled classes")
    label_of = {c["id"]: k for k, c in enumerate(data["categories"])}
    objects: dict[int, list[tuple[list[float], int]]] = {}
    avoid: dict[int, list[list[float]]] = {}
    for a in data["annotations"]:
        avoid.setdefault(a["image_id"], []).append(a["bbox"])
        if not a["iscrowd"]:
            objects.setdefault(a["image_id"], []).append((a["bbox"], label_of[a["category_id"]]))
    if not objects:  # only background crops: the accuracy would be 1.0 and mean nothing
        raise DataError(f"{annotations}: no object box (iscrowd 0) to crop; the pretraining needs "
                        "labelled objects, not only background")
    train, val = split_images(data, seed, train_images, val_images)
    folder = Path(images)
    if not folder.is_dir():
        raise DataError(f"{folder}: the images folder of {annotations} is not found; check the path")
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": []}
    jobs = [("val", image) for image in val] + [("train", image) for image in train]
    for split, image in tqdm(jobs, desc="pretrain crops", unit="img", disable=not progress,
                             leave=False):  # fmt: skip
        pixels = (read_image(folder / image["file_name"]).permute(1, 2, 0).numpy() * 255)
        pixels = pixels.round().astype(np.uint8)
        own = objects.get(image["id"], [])
        boxes = np.array([b for b, _ in own], dtype=np.float64).reshape(-1, 4)
        labels = np.array([lab for _, lab in own], dtype=np.int64)
        regions = np.array(avoid.get(image["id"], []), dtype=np.float64).reshape(-1, 4)
        rng = np.random.default_rng((seed, _STREAM, int(image["id"])))
        parts[split].append(image_crops(pixels, boxes, labels, regions, rng, size, jitter,
                                        background_per_image, len(classes) - 1))  # fmt: skip
    tensors = []
    for split in ("train", "val"):
        crops = np.concatenate([c for c, _ in parts[split]]) if parts[split] else \
            np.empty((0, size, size, 3), dtype=np.uint8)
        labels = np.concatenate([y for _, y in parts[split]]) if parts[split] else \
            np.empty(0, dtype=np.int64)
        if len(labels) == 0:
            raise DataError(f"{annotations}: no {split} crops (no boxes and no room for background "
                            f"in the {split} images); give more images or a smaller crop_size")
        if not (labels < len(classes) - 1).any():
            raise DataError(f"{annotations}: no object box among the {split} images, only background "
                            "crops (an accuracy of them would mean nothing); give images with boxes "
                            "(pretrain.train_images / pretrain.val_images) or more of them")
        tensors += [torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous(),
                    torch.from_numpy(labels)]
    return tensors[0], tensors[1], tensors[2], tensors[3], classes
