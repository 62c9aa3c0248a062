"""Random crops for training: boxes kept by the share inside (the rest dropped or ignored), at
the full image's scale or as tiles of sliced training."""

from __future__ import annotations

import itertools

import pytest
import torch

from mrae.data.augment import AugmentByKey, crop_target, resize_scale
from mrae.engine.sampler import ResumableSampler
from mrae.modeling.transform import ScaleAwareTransform


def test_crop_keeps_boxes_mostly_inside_and_clips_them():
    target = {"boxes": torch.tensor([[10.0, 10, 20, 20], [45, 10, 55, 20], [48, 30, 70, 40]]),
              "labels": torch.tensor([1, 2, 3])}
    out = crop_target(target, 0, 0, 50, 50)
    # box 2 is half inside (kept, clipped), box 3 has 2/22 inside (dropped)
    assert out["boxes"].tolist() == [[10, 10, 20, 20], [45, 10, 50, 20]]
    assert out["labels"].tolist() == [1, 2]
    shifted = crop_target(target, 5, 5, 50, 50)
    assert shifted["boxes"][0].tolist() == [5, 5, 15, 15]


class _Image(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        image = torch.rand(3, 300, 512)
        return image, {"boxes": torch.tensor([[100.0, 100, 110, 110]]), "labels": torch.tensor([1])}


def test_crop_size_is_in_model_pixels_and_carries_the_scale():
    data = AugmentByKey(_Image(), crop=(128, 160), min_size=300, max_size=512)
    image, target = data[(0, False, 0.0, 0.0)]
    assert image.shape[-2:] == (128, 160) and target["scale"] == 1.0
    # a model that halves the image: the crop covers twice as many original pixels
    half = AugmentByKey(_Image(), crop=(64, 64), min_size=150, max_size=256)
    image, target = half[(0, False, 0.5, 0.5)]
    assert image.shape[-2:] == (128, 128) and target["scale"] == resize_scale(300, 512, 150, 256) == 0.5
    # without a position in the key (no crop drawn) the image is whole
    assert data[(0, False)][0].shape[-2:] == (300, 512)


def test_the_model_resizes_a_crop_by_its_full_image_scale():
    transform = ScaleAwareTransform(300, 512, [0.5] * 3, [0.25] * 3)
    transform.train()
    crop = torch.rand(3, 128, 128)
    batch, targets = transform([crop], [{"boxes": torch.tensor([[0.0, 0, 10, 10]]),
                                         "labels": torch.tensor([1]), "scale": 1.0}])
    assert batch.image_sizes == [(128, 128)]  # torchvision alone would upscale it to 300 x 300
    batch, targets = transform([crop], [{"boxes": torch.tensor([[0.0, 0, 10, 10]]),
                                         "labels": torch.tensor([1]), "scale": 0.5}])
    assert batch.image_sizes == [(64, 64)] and targets[0]["boxes"].tolist() == [[0, 0, 5, 5]]
    transform.eval()  # evaluation: the usual resize
    batch, _ = transform([crop])
    assert batch.image_sizes == [(300, 300)]


def test_crop_positions_do_not_change_the_order_or_flips():
    plain = ResumableSampler(7, seed=2).epoch(1)
    cropped = ResumableSampler(7, seed=2, crop=True).epoch(1)
    assert (plain[0] == cropped[0]).all() and (plain[1] == cropped[1]).all()
    assert cropped[2].shape == (7, 2) and ((0 <= cropped[2]) & (cropped[2] < 1)).all()
    stream = iter(ResumableSampler(7, seed=2, crop=True, start=3))
    assert len(next(stream)) == 4


# ------------------------------------------------------------------- cut boxes and sliced training


class _Seeded(torch.utils.data.Dataset):
    """A 120 x 200 and a 60 x 70 image whose pixels hold their row (channel 0) and column
    (channel 1), with 8 seeded boxes each and one ignore region."""

    sizes = [(120, 200), (60, 70)]

    def __len__(self):
        return 2

    def __getitem__(self, index):
        h, w = self.sizes[index]
        rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
        cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
        generator = torch.Generator().manual_seed(index)
        xy = torch.rand(8, 2, generator=generator) * torch.tensor([w - 30.0, h - 30.0])
        wh = 4 + torch.rand(8, 2, generator=generator) * 26
        return torch.stack([rows, cols, rows + cols]), {
            "boxes": torch.cat([xy, xy + wh], 1).round(), "labels": torch.arange(1, 9),
            "ignore_boxes": torch.tensor([[5.0, 5, 40, 30]]),
        }


def _seeded_items(**options):
    """Four training items of :class:`_Seeded` as the sampler of seed 3 draws them: the key, then
    the crop's size, its top-left pixel (row, column) and the target's boxes, labels, ignore boxes."""
    data = AugmentByKey(_Seeded(), crop=(48, 64), min_size=72, max_size=120, **options)
    items = []
    for key in itertools.islice(iter(ResumableSampler(2, seed=3, crop=True)), 4):
        image, target = data[key]
        items.append((
            [key[0], key[1], round(key[2], 6), round(key[3], 6)], list(image.shape[-2:]),
            [image[0, 0, 0].item(), image[1, 0, 0].item()], target["scale"],
            target["boxes"].tolist(), target["labels"].tolist(), target["ignore_boxes"].tolist(),
        ))
    return items


# What _seeded_items gave before data.crop_min_visible and data.crop_scale existed (computed with
# the previous mrae/data/augment.py): the default path must stay bit for bit the same.
SEEDED_BEFORE = [
    ([1, True, 0.582162, 0.094129], [40, 53], [12.0, 68.0], 1.2,
     [[20.0, 0.0, 39.0, 13.0], [25.0, 10.0, 53.0, 31.0], [38.0, 11.0, 53.0, 22.0],
      [33.0, 1.0, 46.0, 19.0], [19.0, 4.0, 43.0, 28.0], [37.0, 0.0, 42.0, 22.0],
      [30.0, 2.0, 50.0, 31.0]],
     [1, 2, 4, 5, 6, 7, 8], [[29.0, 0.0, 53.0, 18.0]]),
    ([0, False, 0.433127, 0.479051], [80, 107], [17.0, 45.0], 0.6,
     [[39.0, 52.0, 62.0, 77.0], [7.0, 40.0, 29.0, 68.0], [38.0, 64.0, 53.0, 80.0],
      [32.0, 40.0, 47.0, 58.0], [14.0, 19.0, 43.0, 24.0], [5.0, 30.0, 17.0, 58.0]],
     [1, 3, 4, 5, 6, 8], []),
    ([0, True, 0.427445, 0.538761], [80, 107], [17.0, 149.0], 0.6,
     [[43.0, 52.0, 66.0, 77.0], [76.0, 40.0, 98.0, 68.0], [52.0, 64.0, 67.0, 80.0],
      [58.0, 40.0, 73.0, 58.0], [62.0, 19.0, 91.0, 24.0], [88.0, 30.0, 100.0, 58.0]],
     [1, 3, 4, 5, 6, 8], []),
    ([1, True, 0.906542, 0.328664], [40, 53], [19.0, 64.0], 1.2,
     [[21.0, 3.0, 49.0, 24.0], [34.0, 4.0, 49.0, 15.0], [29.0, 0.0, 42.0, 12.0],
      [15.0, 0.0, 39.0, 21.0], [33.0, 0.0, 38.0, 15.0], [26.0, 0.0, 46.0, 24.0]],
     [2, 4, 5, 6, 7, 8], [[25.0, 0.0, 53.0, 11.0]]),
]


def test_default_crops_are_bit_identical_to_before():
    assert _seeded_items() == SEEDED_BEFORE
    assert _seeded_items(min_visible=None, crop_scale="image") == SEEDED_BEFORE
    # the threshold changes which boxes are kept, never the crop windows or the random numbers
    for new, old in zip(_seeded_items(min_visible=0.5), SEEDED_BEFORE, strict=True):
        assert new[:4] == old[:4] and new[4:6] == old[4:6]


def test_cut_box_mostly_inside_is_kept_clipped_and_one_barely_inside_becomes_ignored():
    target = {"boxes": torch.tensor([[10.0, 10, 20, 20], [43, 10, 53, 20], [48, 30, 58, 40],
                                     [60, 0, 70, 10]]),
              "labels": torch.tensor([1, 2, 3, 4]), "ignore_boxes": torch.tensor([[0.0, 0, 5, 5]])}
    out = crop_target(target, 0, 0, 50, 50, min_visible=0.5)
    # box 2 is 70% inside: kept, clipped; box 3 is 20% inside: its visible part is ignored;
    # box 4 is wholly outside: dropped
    assert out["boxes"].tolist() == [[10, 10, 20, 20], [43, 10, 50, 20]]
    assert out["labels"].tolist() == [1, 2]
    assert out["ignore_boxes"].tolist() == [[0, 0, 5, 5], [48, 30, 50, 40]]
    # a stricter threshold ignores box 2 too; a target without ignore boxes gets them
    strict = crop_target({k: target[k] for k in ("boxes", "labels")}, 0, 0, 50, 50, min_visible=0.8)
    assert strict["boxes"].tolist() == [[10, 10, 20, 20]]
    assert strict["ignore_boxes"].tolist() == [[43, 10, 50, 20], [48, 30, 50, 40]]
    # shifted to the window's origin like the boxes; threshold 1 keeps only whole boxes
    shifted = crop_target(target, 5, 5, 50, 50, min_visible=1.0)
    assert shifted["boxes"].tolist() == [[5, 5, 15, 15]]
    assert shifted["ignore_boxes"].tolist() == [[38, 5, 45, 15], [43, 25, 45, 35]]
    # without the option (today's default) box 3 is dropped, not ignored
    assert crop_target(target, 0, 0, 50, 50)["ignore_boxes"].tolist() == [[0, 0, 5, 5]]


def test_image_smaller_than_the_crop_comes_back_whole():
    small = _Seeded()[1]  # 60 x 70 px
    tiles = AugmentByKey(_Seeded(), crop=(96, 128), crop_scale="tile", min_visible=0.5)
    for position in ((0.0, 0.0), (0.9, 0.7)):
        image, target = tiles[(1, False, *position)]
        assert torch.equal(image, small[0]) and torch.equal(target["boxes"], small[1]["boxes"])
        assert torch.equal(target["ignore_boxes"], small[1]["ignore_boxes"]) and "scale" not in target
    # at the full image's scale: a 300 x 512 image, a crop larger than its resized size
    scaled = AugmentByKey(_Image(), crop=(400, 600), min_size=300, max_size=512, min_visible=0.5)
    image, target = scaled[(0, False, 0.9, 0.7)]
    assert image.shape[-2:] == (300, 512) and target["scale"] == 1.0
    assert target["boxes"].tolist() == [[100, 100, 110, 110]]


class _Large(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        return torch.rand(3, 600, 1000), {"boxes": torch.tensor([[0.0, 0, 16, 16]]),
                                          "labels": torch.tensor([1])}


def test_tiles_are_original_pixels_seen_as_sliced_inference_sees_them():
    transform = ScaleAwareTransform(300, 512, [0.5] * 3, [0.25] * 3)
    transform.train()
    tiles = AugmentByKey(_Large(), crop=(300, 512), min_size=300, max_size=512, crop_scale="tile")
    image, target = tiles[(0, False, 0.0, 0.0)]
    assert image.shape[-2:] == (300, 512) and "scale" not in target
    batch, targets = transform([image], [target])
    assert batch.image_sizes == [(300, 512)] and targets[0]["boxes"].tolist() == [[0, 0, 16, 16]]
    # the default crop of the same size covers 600 x 1000 px at the full image's scale (0.5)
    image, target = AugmentByKey(_Large(), crop=(300, 512), min_size=300, max_size=512)[(0, False, 0, 0)]
    assert image.shape[-2:] == (600, 1000) and target["scale"] == 0.5
    batch, targets = transform([image], [target])
    assert batch.image_sizes == [(300, 500)] and targets[0]["boxes"].tolist() == [[0, 0, 8, 8]]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="crop_scale"):
        AugmentByKey(_Image(), crop=(64, 64), crop_scale="native")
    with pytest.raises(ValueError, match="min_visible"):
        AugmentByKey(_Image(), crop=(64, 64), min_visible=0.0)
