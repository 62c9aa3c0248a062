"""`mrae anchors` and the shrink warning at the scale the model really sees: whole images resized,
tiles resized (data.crop_scale: tile), or no resize at all (--native, images of mixed sizes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mrae.cli import main as cli_main
from mrae.data.anchors import resize_boxes
from mrae.data.sizes import shrink_warning

CAR = 27.0  # the drone frames: 1920 x 1080, cars about 27 px


def drone_coco(path: Path) -> Path:
    """Two 1920 x 1080 frames and one 640 x 512 frame of square cars, 24-30 px."""
    rng = np.random.default_rng(0)
    images = [{"id": 1, "file_name": "a.jpg", "width": 1920, "height": 1080},
              {"id": 2, "file_name": "b.jpg", "width": 1920, "height": 1080},
              {"id": 3, "file_name": "c.jpg", "width": 640, "height": 512}]
    anns = []
    for k in range(90):
        image = images[k % 3]
        side = float(rng.choice([24.0, 27.0, 30.0])) * float(rng.uniform(0.9, 1.1))
        aspect = float(rng.choice([0.8, 1.0, 1.25]))
        w, h = side * aspect**0.5, side / aspect**0.5
        x = float(rng.uniform(0, image["width"] - 40))
        y = float(rng.uniform(0, image["height"] - 40))
        anns.append({"id": k + 1, "image_id": image["id"], "category_id": 1,
                     "bbox": [round(x, 1), round(y, 1), round(w, 2), round(h, 2)],
                     "area": w * h, "iscrowd": 0})  # fmt: skip
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "car"}]}))
    return path


def _median(text: str) -> tuple[float, float]:
    """The resized and the original median box side of `mrae anchors`' output."""
    found = re.search(r"median ([\d.]+) px \(([\d.]+) original", text)
    assert found, text
    return float(found.group(1)), float(found.group(2))


def test_resize_boxes_of_a_tile_scales_as_the_tile_is_resized() -> None:
    boxes = np.array([[10.0, 20.0, CAR, CAR]])
    hw = np.array([[1080.0, 1920.0]])
    whole, _ = resize_boxes(boxes, hw, 300, 512)
    assert whole[0, 2] == pytest.approx(CAR * 512 / 1920, rel=1e-3)  # 7.2 px
    tiled, image_hw = resize_boxes(boxes, hw, 300, 512, tile=(300, 512))
    assert tiled[0, 2] == pytest.approx(CAR)  # a 300 x 512 tile at 1:1
    assert image_hw[0].tolist() == [1080.0, 1920.0]
    half, _ = resize_boxes(boxes, hw, 150, 256, tile=(300, 512))
    assert half[0, 2] == pytest.approx(CAR / 2)
    small = np.array([[200.0, 250.0]])  # an image smaller than the tile: the whole image
    assert resize_boxes(boxes, small, 300, 512, tile=(300, 512))[0][0, 2] == pytest.approx(
        resize_boxes(boxes, small, 300, 512)[0][0, 2])


def test_anchors_with_a_tile_config_fit_the_native_scale(tmp_path: Path, capsys) -> None:
    ann = drone_coco(tmp_path / "train.json")
    whole = tmp_path / "whole.yaml"
    whole.write_text("model:\n  min_size: 300\n  max_size: 512\n")
    tile = tmp_path / "tile.yaml"
    tile.write_text("model:\n  min_size: 300\n  max_size: 512\n"
                    "data:\n  train_crop: [300, 512]\n  crop_scale: tile\n")
    image_crops = tmp_path / "image_crops.yaml"  # crops at the whole image's scale: as whole
    image_crops.write_text("model:\n  min_size: 300\n  max_size: 512\n"
                           "data:\n  train_crop: [300, 512]\n")
    medians = {}
    for config in (whole, tile, image_crops):
        assert cli_main(["anchors", str(ann), "--config", str(config)]) == 0
        out = capsys.readouterr().out
        medians[config.stem] = _median(out)
        if config is tile:
            assert "of 300x512 tiles (data.crop_scale: tile)" in out
    original = medians["whole"][1]
    assert 26 < original < 28
    assert medians["tile"][0] == pytest.approx(original, abs=0.1)  # 1:1 tiles
    assert medians["whole"][0] < 10 and medians["image_crops"] == medians["whole"]


def test_native_scale_with_images_of_mixed_sizes(tmp_path: Path, capsys) -> None:
    ann = drone_coco(tmp_path / "train.json")
    assert cli_main(["anchors", str(ann), "--native"]) == 0
    out = capsys.readouterr().out
    resized, original = _median(out)
    assert resized == original and "none: native scale" in out
    # min_size/max_size cannot say "no resize" for 1920 x 1080 and 640 x 512 frames at once
    assert cli_main(["anchors", str(ann), "--min-size", "512", "--max-size", "640"]) == 0
    assert _median(capsys.readouterr().out)[0] < original


@pytest.mark.parametrize("extra", [["--config", "c.yaml"], ["--min-size", "300"]])
def test_native_with_another_resize_is_refused(tmp_path: Path, capsys, extra: list[str]) -> None:
    ann = drone_coco(tmp_path / "train.json")
    (tmp_path / "c.yaml").write_text("model:\n  min_size: 300\n")
    extra = [str(tmp_path / e) if e.endswith(".yaml") else e for e in extra]
    assert cli_main(["anchors", str(ann), "--native", *extra]) == 2
    err = capsys.readouterr().err
    assert "--native takes the boxes as they are" in err and err.count("\n") == 1


def test_shrink_warning_of_tiles() -> None:
    frame = {"images": [{"id": 1, "file_name": "a.jpg", "width": 1920, "height": 1080}],
             "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": [5.0, 5.0, CAR, CAR],
                              "iscrowd": 0} for i in (1, 2, 3)],
             "categories": [{"id": 1, "name": "car"}]}  # fmt: skip
    assert "from 27.0 to 7.2 px" in shrink_warning(frame, 300, 512)
    assert shrink_warning(frame, 300, 512, tile=(300, 512)) is None
    message = shrink_warning(frame, 75, 128, tile=(300, 512))  # tiles shrunk 4x: 6.8 px
    assert message is not None and "of the data.train_crop 300x512 tiles" in message
