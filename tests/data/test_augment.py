"""Random crops for training: boxes kept by the share inside, objects at the full image's scale."""

from __future__ import annotations

import torch

from mrae.data.augment import AugmentByKey, crop_target, resize_scale
from mrae.engine.sampler import ResumableSampler
from mrae.modeling.detector import ScaleAwareTransform


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
