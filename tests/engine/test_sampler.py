"""The resumable training order: a pure function of (seed, epoch, position), shardable."""

from __future__ import annotations

from itertools import islice

import torch

from mrae.data.augment import AugmentByKey
from mrae.engine.sampler import ResumableSampler


def take(sampler: ResumableSampler, n: int) -> list[tuple[int, bool]]:
    return list(islice(iter(sampler), n))


def test_each_epoch_is_a_permutation_and_epochs_differ():
    stream = take(ResumableSampler(7, seed=3), 21)
    epochs = [stream[i : i + 7] for i in (0, 7, 14)]
    for epoch in epochs:
        assert sorted(i for i, _ in epoch) == list(range(7))
    assert epochs[0] != epochs[1]


def test_starting_at_an_offset_continues_the_same_stream():
    full = take(ResumableSampler(5, seed=1), 17)
    for start in (0, 3, 5, 11):
        assert take(ResumableSampler(5, seed=1, start=start), 17 - start) == full[start:]


def test_seed_changes_the_order_and_flip_off_never_flips():
    assert take(ResumableSampler(9, seed=0), 9) != take(ResumableSampler(9, seed=1), 9)
    assert not any(f for _, f in take(ResumableSampler(9, seed=0, flip=False), 30))
    flips = [f for _, f in take(ResumableSampler(9, seed=0), 900)]
    assert 0.4 < sum(flips) / len(flips) < 0.6


def test_ranks_share_each_epoch_without_overlap():
    size, world = 7, 2
    shards = [take(ResumableSampler(size, seed=5, rank=r, world_size=world), 4) for r in range(world)]
    indices = [i for shard in shards for i, _ in shard]
    assert len(indices) == 8  # 7 padded to 8
    assert set(indices) == set(range(size))
    # Rank r's elements are every world-th element of the padded epoch, flips included.
    order, flips = ResumableSampler(size, seed=5).epoch(0)
    padded = list(zip(list(order) + [order[0]], list(flips) + [flips[0]], strict=True))
    for rank in range(world):
        assert shards[rank] == [(int(i), bool(f)) for i, f in padded[rank::world]]


class _Boxes(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        image = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
        return image, {"boxes": torch.tensor([[0.0, 1.0, 1.5, 2.0]]), "labels": torch.tensor([1])}


def test_flip_mirrors_image_and_boxes():
    data = AugmentByKey(_Boxes())
    image, target = data[(0, False)]
    flipped, flipped_target = data[(0, True)]
    assert torch.equal(flipped, image.flip(-1))
    assert flipped_target["boxes"].tolist() == [[2.5, 1.0, 4.0, 2.0]]
    assert target["boxes"].tolist() == [[0.0, 1.0, 1.5, 2.0]]  # the source is left alone
