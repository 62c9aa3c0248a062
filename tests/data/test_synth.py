import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mrae.cli import main as cli_main
from mrae.data.synth import generate
from mrae.data.synth_scene import CLASSES, _class_polygons, _draw, _place_shape, render
from mrae.errors import ConfigError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, train_images=24, val_images=6, seed=3, workers=0, progress=False)


def test_same_seed_gives_identical_bytes_whatever_the_workers(dataset, tmp_path):
    out, _ = dataset
    again = generate(tmp_path / "b", train_images=24, val_images=6, seed=3, workers=2, progress=False)
    first, second = _files(out), _files(tmp_path / "b")
    assert len(first) == 24 + 6 + 2
    assert first == second
    assert Path(again["train_annotations"]).name == "instances_train.json"


def test_different_seed_differs(dataset, tmp_path):
    out, _ = dataset
    generate(tmp_path, train_images=24, val_images=6, seed=4, workers=0, progress=False)
    first, other = _files(out), _files(tmp_path)
    assert first.keys() == other.keys()
    assert all(first[k] != other[k] for k in first)


def test_valid_coco_with_boxes_inside_and_mostly_small(dataset):
    _, paths = dataset
    sizes, labels = [], set()
    for split, n in (("train", 24), ("val", 6)):
        coco = COCO(paths[f"{split}_annotations"])
        assert len(coco.getImgIds()) == n
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        for img in coco.loadImgs(coco.getImgIds()):
            path = Path(paths[f"{split}_images"]) / img["file_name"]
            with Image.open(path) as im:
                assert im.size == (img["width"], img["height"]) == (512, 300)
                assert im.mode == "RGB"
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert 1 <= len(anns) <= 15
            for a in anns:
                x, y, w, h = a["bbox"]
                assert a["iscrowd"] == 0 and w > 0 and h > 0
                assert a["area"] == pytest.approx(w * h, abs=0.01)
                assert x >= 0 and y >= 0 and x + w <= 512 and y + h <= 300
                sizes.append(np.sqrt(w * h))
                labels.add(a["category_id"])
    sizes = np.array(sizes)
    assert labels == set(range(1, len(CLASSES) + 1))
    assert sizes.min() >= 3.9 and sizes.max() <= 64.1
    assert np.mean((sizes >= 4) & (sizes <= 32)) > 0.8
    assert np.mean((sizes >= 8) & (sizes <= 20)) > 0.4


@pytest.mark.parametrize("kind", CLASSES)
def test_box_is_tight_around_the_drawn_shape(kind):
    rng = np.random.default_rng(0)
    for size in (6.0, 14.0, 40.0):
        polys = _place_shape(_class_polygons(kind, rng), size, rng)
        outer = polys[0][0]
        (x0, y0), (x1, y1) = outer.min(axis=0) + 50, outer.max(axis=0) + 50
        assert np.sqrt((x1 - x0) * (y1 - y0)) == pytest.approx(size)
        canvas = np.zeros((100, 100, 3), dtype=np.uint8)
        _draw(canvas, polys, 50.0, 50.0, np.full(3, 255.0, dtype=np.float32), blur=0.0)
        alpha = canvas[..., 0] / 255.0
        area = sum((1 if fill else -1) * _shoelace(v) for v, fill in polys)
        assert alpha.sum() == pytest.approx(area, rel=0.06)  # anti-aliased coverage
        ys, xs = np.nonzero(alpha >= 0.5)  # mostly covered pixels lie in the box
        assert xs.min() >= np.floor(x0) and xs.max() + 1 <= np.ceil(x1)
        assert ys.min() >= np.floor(y0) and ys.max() + 1 <= np.ceil(y1)
        ys, xs = np.nonzero(alpha > 0)  # and the box has no empty margin of a pixel
        assert xs.min() < x0 + 1 and xs.max() + 1 > x1 - 1
        assert ys.min() < y0 + 1 and ys.max() + 1 > y1 - 1


def _shoelace(v: np.ndarray) -> float:
    x, y = v[:, 0], v[:, 1]
    return abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2


def test_medium_fraction_sets_the_share_of_32_to_64_px_objects(tmp_path):
    sizes = []
    for i in range(30):
        _, annotations = render(seed=1, split="train", index=i, medium_fraction=1.0)
        sizes += [np.sqrt(w * h) for _, (_, _, w, h) in annotations]
    assert min(sizes) >= 31.9 and max(sizes) <= 64.1


def test_bad_settings_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="medium_fraction"):
        generate(tmp_path, train_images=2, val_images=1, medium_fraction=1.5, progress=False)
    with pytest.raises(ConfigError, match="train_images"):
        generate(tmp_path, train_images=0, val_images=1, progress=False)
    with pytest.raises(ConfigError, match="width"):
        generate(tmp_path, train_images=1, val_images=1, width=40, progress=False)


def test_cli_round_trip(tmp_path, capsys):
    rc = cli_main(["synth", str(tmp_path), "--images", "5", "--seed", "7", "--workers", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "annotations" / "instances_train.json") in printed
    train = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    val = json.loads((tmp_path / "annotations" / "instances_val.json").read_text())
    assert len(train["images"]) == 5 and len(val["images"]) == 1  # val default: max(1, 5 // 4)
    assert f"train: 5 images, {len(train['annotations'])} objects" in printed
    for img in train["images"]:
        assert (tmp_path / "images" / "train" / img["file_name"]).is_file()


def test_cli_never_replaces_a_dataset_unless_asked(tmp_path, capsys):
    args = ["synth", str(tmp_path), "--images", "2", "--val-images", "1", "--seed", "7", "--workers", "0"]
    assert cli_main(args) == 0
    ann = tmp_path / "annotations" / "instances_train.json"
    before = ann.read_bytes()
    capsys.readouterr()
    assert cli_main([*args[:-4], "--seed", "8", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "already holds a dataset" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert ann.read_bytes() == before
    assert cli_main([*args[:-4], "--seed", "8", "--workers", "0", "--overwrite"]) == 0
    assert ann.read_bytes() != before
    (tmp_path / "file").write_text("mine")
    assert cli_main(["synth", str(tmp_path / "file"), "--images", "1", "--workers", "0"]) == 2
    assert (tmp_path / "file").read_text() == "mine"


def test_overwriting_a_dataset_never_writes_through_a_linked_image(tmp_path):
    args = ["synth", str(tmp_path / "d"), "--images", "2", "--val-images", "1", "--workers", "0"]
    assert cli_main(args) == 0
    image = tmp_path / "d" / "images" / "train" / "000000.jpg"
    photo, album = tmp_path / "photo.jpg", tmp_path / "album.jpg"
    photo.write_bytes(b"the user's photo")
    os.link(image, album)
    kept = album.read_bytes()
    image.unlink()
    image.symlink_to(photo)
    other = tmp_path / "d" / "images" / "train" / "000001.jpg"
    os.link(other, tmp_path / "album2.jpg")
    kept2 = other.read_bytes()
    assert cli_main([*args, "--seed", "3", "--overwrite"]) == 0
    assert photo.read_bytes() == b"the user's photo" and album.read_bytes() == kept
    assert (tmp_path / "album2.jpg").read_bytes() == kept2 and other.read_bytes() != kept2
    assert not image.is_symlink()
