"""mrae synth --large: 2048x1536 images with the same kinds and sizes of objects, more of them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mrae.cli import main
from mrae.data.synth import LARGE_OBJECT_FACTOR, LARGE_SIZE, generate
from mrae.data.synth_scene import MAX_OBJECTS, MIN_OBJECTS, render
from mrae.errors import ConfigError


def test_large_cli_writes_2048x1536_images_with_more_objects_of_the_same_sizes(tmp_path, capsys):
    out = tmp_path / "large"
    assert main(["synth", str(out), "--large", "--images", "1", "--val-images", "1", "--workers", "0"]) == 0
    for split in ("train", "val"):
        data = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        assert data["info"]["object_factor"] == LARGE_OBJECT_FACTOR
        (image,) = data["images"]
        assert (image["width"], image["height"]) == LARGE_SIZE
        with Image.open(out / "images" / split / image["file_name"]) as im:
            assert im.size == LARGE_SIZE
        sides = [np.sqrt(a["bbox"][2] * a["bbox"][3]) for a in data["annotations"]]
        assert MIN_OBJECTS * LARGE_OBJECT_FACTOR * 0.8 <= len(sides) <= MAX_OBJECTS * LARGE_OBJECT_FACTOR
        assert max(sides) <= 64 * 1.01 and min(sides) >= 3  # the default's size range, in px
    assert "train: 1 images" in capsys.readouterr().out


def test_object_factor_one_is_the_default_scene_and_json():
    image, annotations = render(5, "val", 2)
    same, again = render(5, "val", 2, object_factor=1)
    assert annotations == again and image.tobytes() == same.tobytes()
    _, more = render(5, "val", 2, width=1024, height=600, object_factor=4)
    assert len(more) > len(annotations)


def test_default_json_has_no_object_factor_and_bad_factor_refused(tmp_path):
    paths = generate(tmp_path / "d", train_images=1, val_images=1, workers=0, progress=False)
    assert "object_factor" not in json.loads(open(paths["train_annotations"]).read())["info"]
    with pytest.raises(ConfigError, match="object_factor"):
        generate(tmp_path / "e", train_images=1, val_images=1, workers=0, progress=False, object_factor=0)
