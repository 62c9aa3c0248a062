"""The training data order: an endless, resumable, shardable stream of ``(index, flip)``.

Every element of the stream is a pure function of ``(seed, epoch, position)``: epoch ``e`` is a
permutation of the dataset drawn from ``numpy.random.default_rng((seed, e))`` together with one
flip decision per position. So a run resumed at step ``s`` rebuilds exactly the batches an
uninterrupted run would have seen, whatever the number of loader workers (the flips are decided
here, in the sampler, not by a random transform in a worker).

With several processes, each epoch is padded to a multiple of ``world_size`` (repeating its first
indices, as :class:`torch.utils.data.DistributedSampler` does) and process ``rank`` takes every
``world_size``-th element from ``rank``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class ResumableSampler(Sampler[tuple[int, bool]]):
    """Endless ``(dataset index, flip)`` stream of one process, starting at element ``start``.

    Args:
        size: number of images in the dataset.
        seed: the run's seed; the same seed gives the same stream.
        flip: draw a horizontal flip with p = 0.5 per element (else always False).
        rank, world_size: this process and the number of processes sharing the epochs.
        start: position in this process's stream to start from (``step * batch_size`` on resume).
    """

    def __init__(
        self, size: int, seed: int, flip: bool = True, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.size = size
        self.seed = seed
        self.flip = flip
        self.rank = rank
        self.world_size = world_size
        self.start = start
        # Elements per process per epoch (the padded epoch split evenly).
        self.per_rank = -(-size // world_size)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, flips)`` of this process in ``epoch``, each of length ``per_rank``."""
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(self.size)
        flips = rng.random(self.size) < 0.5 if self.flip else np.zeros(self.size, dtype=bool)
        padded = self.per_rank * self.world_size
        order = np.resize(order, padded)  # repeats the first elements to pad
        flips = np.resize(flips, padded)
        return order[self.rank :: self.world_size], flips[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            order, flips = self.epoch(epoch)
            for i in range(offset, self.per_rank):
                yield int(order[i]), bool(flips[i])
            epoch, offset = epoch + 1, 0


class FlipByIndex(Dataset):
    """A detection dataset indexed by ``(index, flip)``: the item, mirrored left-right if ``flip``.

    ``dataset[i]`` must be ``(image FloatTensor[3, H, W], target)`` with ``target["boxes"]``
    FloatTensor[K, 4] xyxy in pixels, without a random transform of its own.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, bool]) -> tuple[torch.Tensor, dict[str, Any]]:
        index, flip = key
        image, target = self.dataset[index]
        if flip:
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = target["boxes"].clone()
            boxes[:, 0] = width - target["boxes"][:, 2]
            boxes[:, 2] = width - target["boxes"][:, 0]
            target = {**target, "boxes": boxes}
        return image, target
