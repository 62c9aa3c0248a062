"""Pretraining crops: deterministic, every class present, background crops away from every shape."""

from __future__ import annotations

import numpy as np

from mrae.data.crops import (
    BACKGROUND_LABEL,
    CROP_CLASSES,
    DISTRACTOR_LABEL,
    make_crops,
    scene_crops,
)
from mrae.data.synth_scene import PRETRAIN_SPLIT_ID, SPLITS, render, render_scene


def test_scene_crops_repeat_by_seed_and_differ_across_seeds():
    a_crops, a_labels = scene_crops(seed=3, index=5, size=32)
    b_crops, b_labels = scene_crops(seed=3, index=5, size=32)
    c_crops, _ = scene_crops(seed=4, index=5, size=32)
    assert np.array_equal(a_crops, b_crops) and np.array_equal(a_labels, b_labels)
    assert a_crops.shape[1:] == (32, 32, 3) and a_crops.dtype == np.uint8
    assert not (a_crops.shape == c_crops.shape and np.array_equal(a_crops, c_crops))


def test_one_crop_per_object_and_distractor_plus_background():
    _, objects, distractors = render_scene(7, PRETRAIN_SPLIT_ID, 0)
    _, labels = scene_crops(seed=7, index=0, size=48, background_per_image=2)
    assert (labels < len(CROP_CLASSES) - 2).sum() == len(objects)
    assert (labels == DISTRACTOR_LABEL).sum() == len(distractors)
    assert (labels == BACKGROUND_LABEL).sum() == 2


def test_pretraining_scenes_are_no_dataset_image():
    # the pretraining split id is not a dataset split, so no seed makes its scenes a train/val image
    assert PRETRAIN_SPLIT_ID not in SPLITS.values()
    image, _ = render(0, "train", 0, 128, 96)
    scene, _, _ = render_scene(0, PRETRAIN_SPLIT_ID, 0, 128, 96)
    assert not np.array_equal(np.asarray(image), np.asarray(scene))
    # render() is render_scene() of the split's id
    again, objects, _ = render_scene(0, SPLITS["train"], 0, 128, 96)
    assert np.array_equal(np.asarray(image), np.asarray(again))


def test_make_crops_stacks_scenes_as_tensors():
    crops, labels = make_crops(seed=0, first=0, count=3, size=32, workers=1, progress=False)
    assert crops.shape[1:] == (3, 32, 32) and len(crops) == len(labels)
    assert set(labels.tolist()) <= set(range(len(CROP_CLASSES)))
    assert BACKGROUND_LABEL in labels.tolist()
