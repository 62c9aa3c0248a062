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

import numpy as np
from torch.utils.data import Sampler


class ResumableSampler(Sampler[tuple]):
    """Endless ``(dataset index, flip)`` stream of one process, starting at element ``start``;
    with ``crop``, ``(dataset index, flip, u, v)`` where ``u, v`` in [0, 1) place a random crop
    (:class:`mrae.data.augment.AugmentByKey` applies both).

    Args:
        size: number of images in the dataset.
        seed: the run's seed; the same seed gives the same stream.
        flip: draw a horizontal flip with p = 0.5 per element (else always False).
        rank, world_size: this process and the number of processes sharing the epochs.
        start: position in this process's stream to start from (``step * batch_size`` on resume).
        crop: also draw a crop position per element (drawn after the order and the flips, so
            those are the same with or without it).
    """

    def __init__(
        self, size: int, seed: int, flip: bool = True, rank: int = 0, world_size: int = 1,
        start: int = 0, crop: bool = False,
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
        self.crop = crop
        # Elements per process per epoch (the padded epoch split evenly).
        self.per_rank = -(-size // world_size)

    def epoch(self, epoch: int) -> tuple[np.ndarray, ...]:
        """``(indices, flips)`` of this process in ``epoch``, each of length ``per_rank``; with
        ``crop`` also the crop positions ``[per_rank, 2]`` in [0, 1)."""
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(self.size)
        flips = rng.random(self.size) < 0.5 if self.flip else np.zeros(self.size, dtype=bool)
        padded = self.per_rank * self.world_size
        order = np.resize(order, padded)  # repeats the first elements to pad
        flips = np.resize(flips, padded)
        mine = slice(self.rank, None, self.world_size)
        if not self.crop:
            return order[mine], flips[mine]
        positions = np.resize(rng.random((self.size, 2)), (padded, 2))
        return order[mine], flips[mine], positions[mine]

    def __iter__(self) -> Iterator[tuple]:
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            order, flips, *rest = self.epoch(epoch)
            for i in range(offset, self.per_rank):
                if rest:
                    yield int(order[i]), bool(flips[i]), float(rest[0][i, 0]), float(rest[0][i, 1])
                else:
                    yield int(order[i]), bool(flips[i])
            epoch, offset = epoch + 1, 0
