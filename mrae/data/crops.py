"""Classification crops cut from synthetic scenes: the data of the proxy pretraining.

ImageNet weights cannot be downloaded where this project is tested, so the ResNet trunk learns to
see first on a task any user can build offline (:mod:`mrae.engine.pretrain`): tell, from a square
crop at native resolution, what lies at its centre. The crops are cut from scenes drawn by the
synthetic generator (:func:`mrae.data.synth_scene.render_scene`) with the split id
:data:`~mrae.data.synth_scene.PRETRAIN_SPLIT_ID`, which no dataset split uses, so they never come from a
training or validation image, whatever the seeds.

Classes (``num_classes = len(CLASSES) + 2``): ``0..5`` the six object classes of the generator,
``6`` a distractor (the unlabelled shapes that belong to no class), ``7`` background (a window
whose centre is at least ``min(size, 16)`` px from every object and distractor box).

Every labelled object and every distractor of a scene gives one crop, its box centre placed within
``jitter`` px of the crop's centre; a scene also gives ``background_per_image`` background crops.
Crops that would leave the scene are taken where they fit (shifted inwards), so the object stays
inside but off-centre. Scene ``i`` depends on ``(seed, i)`` only: the same settings give the same
crops, whatever the number of worker processes.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from mrae.data.synth_scene import CLASSES, PRETRAIN_SPLIT_ID, render_scene
from mrae.errors import ConfigError
from mrae.parallel import map_in_processes

CROP_CLASSES: tuple[str, ...] = (*CLASSES, "distractor", "background")
DISTRACTOR_LABEL = len(CLASSES)
BACKGROUND_LABEL = len(CLASSES) + 1


def _window(cx: float, cy: float, size: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner of a ``size`` x ``size`` window centred near (cx, cy), inside the scene."""
    x0 = int(round(cx - size / 2))
    y0 = int(round(cy - size / 2))
    return min(max(x0, 0), width - size), min(max(y0, 0), height - size)


def background_centres(avoid: np.ndarray, rng: np.random.Generator, size: int, width: int,
                       height: int, count: int) -> list[tuple[float, float]]:
    """Up to ``count`` centres of background windows in a ``width`` x ``height`` image: drawn
    uniformly where a ``size`` x ``size`` window fits, kept when at least ``min(size / 2, 16)`` px
    from every box of ``avoid`` ([M, 4] xywh); ``50 * count`` draws at most. Shared by the
    synthetic crops and those of a dataset (:mod:`mrae.data.dataset_crops`)."""
    margin = min(size / 2, 16.0)
    found: list[tuple[float, float]] = []
    tries = 0
    while len(found) < count and tries < 50 * count:
        tries += 1
        cx, cy = rng.uniform(size / 2, width - size / 2), rng.uniform(size / 2, height - size / 2)
        # distance from the centre to each box (0 inside it)
        dx = np.maximum(np.maximum(avoid[:, 0] - cx, cx - avoid[:, 0] - avoid[:, 2]), 0.0)
        dy = np.maximum(np.maximum(avoid[:, 1] - cy, cy - avoid[:, 1] - avoid[:, 3]), 0.0)
        if avoid.size == 0 or np.hypot(dx, dy).min() >= margin:
            found.append((cx, cy))
    return found


def cut_windows(pixels: np.ndarray, centres: list[tuple[float, float, int]],
                size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` x ``size`` crops of ``pixels`` (uint8 [H, W, 3], at least ``size`` each way)
    centred on each ``(cx, cy, label)`` of ``centres``, shifted inwards where they would leave
    it: (uint8 [K, size, size, 3], int64 labels [K])."""
    height, width = pixels.shape[:2]
    crops = np.empty((len(centres), size, size, 3), dtype=np.uint8)
    labels = np.empty(len(centres), dtype=np.int64)
    for k, (cx, cy, label) in enumerate(centres):
        x0, y0 = _window(cx, cy, size, width, height)
        crops[k] = pixels[y0 : y0 + size, x0 : x0 + size]
        labels[k] = label
    return crops, labels


def scene_crops(
    seed: int, index: int, size: int = 64, jitter: float = 4.0, background_per_image: int = 3,
    width: int = 512, height: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """The crops of scene ``index``: (uint8 [K, size, size, 3], int64 labels [K] in 0..7)."""
    image, objects, distractors = render_scene(seed, PRETRAIN_SPLIT_ID, index, width, height)
    pixels = np.asarray(image)
    rng = np.random.default_rng((seed, PRETRAIN_SPLIT_ID, index, 1))
    centres: list[tuple[float, float, int]] = []
    for category, (x, y, w, h) in objects:
        centres.append((x + w / 2, y + h / 2, category - 1))
    for x, y, w, h in distractors:
        centres.append((x + w / 2, y + h / 2, DISTRACTOR_LABEL))
    boxes = np.array([b for _, b in objects] + distractors, dtype=np.float64).reshape(-1, 4)
    # the draws' order: the background centres, then each object's jitter
    background = background_centres(boxes, rng, size, width, height, background_per_image)
    centres = [(cx + rng.uniform(-jitter, jitter), cy + rng.uniform(-jitter, jitter), label)
               for cx, cy, label in centres]  # fmt: skip
    centres += [(cx, cy, BACKGROUND_LABEL) for cx, cy in background]
    return cut_windows(pixels, centres, size)


def _scene_job(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    return scene_crops(*job)


def make_crops(
    seed: int, first: int, count: int, size: int = 64, jitter: float = 4.0,
    background_per_image: int = 3, workers: int = 2, progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of scenes ``first .. first + count - 1``.

    Returns:
        (uint8 Tensor [K, 3, size, size], int64 Tensor [K] of labels in 0..7, see :data:`CROP_CLASSES`).
    """
    if size < 16 or size > 300:
        raise ConfigError(f"pretrain.crop_size={size} is not valid; give 16..300 px")
    if count < 1:
        raise ConfigError(f"pretrain: the number of scenes must be >= 1, got {count}")
    jobs = [(seed, i, size, jitter, background_per_image) for i in range(first, first + count)]
    desc = f"pretrain crops (scenes {first}..{first + count - 1})"
    in_order = (map_in_processes(_scene_job, jobs, workers, what="the pretraining crops")
                if workers > 1 else map(_scene_job, jobs))
    parts = list(tqdm(in_order, total=count, desc=desc, disable=not progress, leave=False))
    crops = torch.from_numpy(np.concatenate([c for c, _ in parts])).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(np.concatenate([lab for _, lab in parts]))
    return crops, labels
