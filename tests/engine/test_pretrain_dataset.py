"""`mrae pretrain` on a dataset's own boxes: crops of each class and of background from a small COCO
dataset made here, a trunk that loads through model.pretrained=PATH, and its cache key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from torchvision.ops.misc import FrozenBatchNorm2d

from mrae.cli import main as cli
from mrae.data.dataset_crops import dataset_crops
from mrae.engine.config import load_config
from mrae.engine.pretrain import cache_path, report_file, resolve_pretrained
from mrae.errors import ConfigError
from mrae.modeling.backbone import ResNetLevels

TINY = ["pretrain.crop_size=16", "pretrain.steps=2", "pretrain.batch_size=4", "pretrain.scenes=5",
        "pretrain.val_scenes=1", "pretrain.background_per_image=2"]
COLOURS = {1: (250, 250, 250), 2: (120, 120, 120)}  # category 1 bright "hot", 2 grey "warm"


def make_dataset(root: Path, n_images: int = 6) -> tuple[Path, Path]:
    """Images 80 x 64 on black: two 8 x 8 objects each (one per class) and, in image 1, an ignore
    region; returns (annotations JSON, images folder)."""
    images = root / "images"
    images.mkdir(parents=True)
    data: dict = {"images": [], "annotations": [],
                  "categories": [{"id": 1, "name": "hot"}, {"id": 2, "name": "warm"}]}
    for i in range(1, n_images + 1):
        picture = Image.new("L", (80, 64), 0)
        draw = ImageDraw.Draw(picture)
        for category, (x, y) in ((1, (6 + i, 8)), (2, (50, 40 - i))):
            draw.rectangle((x, y, x + 7, y + 7), fill=COLOURS[category][0])
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": i,
                                        "category_id": category, "bbox": [x, y, 8, 8], "area": 64,
                                        "iscrowd": 0})  # fmt: skip
        if i == 1:
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": 1,
                                        "category_id": 1, "bbox": [0, 40, 30, 24], "area": 720,
                                        "iscrowd": 1, "ignore": 1})  # fmt: skip
        picture.save(images / f"{i}.png")
        data["images"].append({"id": i, "file_name": f"{i}.png", "width": 80, "height": 64})
    ann = root / "train.json"
    ann.write_text(json.dumps(data))
    return ann, images


def test_crops_of_each_class_and_background(tmp_path: Path) -> None:
    ann, images = make_dataset(tmp_path)
    train_x, train_y, val_x, val_y, classes = dataset_crops(
        ann, images, seed=0, train_images=10, val_images=1, size=16, jitter=2.0,
        background_per_image=2, progress=False)
    assert classes == ("hot", "warm", "background")
    # 5 training images and 1 held out, 2 objects and 2 background crops each
    assert train_x.shape == (20, 3, 16, 16) and train_x.dtype == torch.uint8
    assert val_x.shape == (4, 3, 16, 16)
    assert torch.bincount(train_y).tolist() == [5, 5, 10]
    # an object crop holds its object's pixels at its centre; a background crop is black there
    centre = train_x[:, 0, 7:9, 7:9].float().mean(dim=(1, 2))
    for label, value in ((0, 250), (1, 120), (2, 0)):
        assert torch.all(centre[train_y == label] == value), label
    again = dataset_crops(ann, images, seed=0, train_images=10, val_images=1, size=16, jitter=2.0,
                          background_per_image=2, progress=False)
    assert torch.equal(again[0], train_x) and torch.equal(again[1], train_y)


def test_cli_pretrains_a_trunk_that_loads_like_imagenet_weights(tmp_path: Path, capsys) -> None:
    ann, images = make_dataset(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  backbone: resnet18\n")
    out = tmp_path / "trunk.pth"
    torch.set_num_threads(1)
    code = cli(["pretrain", "--config", str(config), "--annotations", str(ann), "--images",
                str(images), "--out", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    assert "model.pretrained=" + str(out) in capsys.readouterr().out
    report = json.loads(report_file(out).read_text())
    assert report["classes"] == ["hot", "warm", "background"]
    assert report["settings"]["annotations"] == str(ann) and report["train_crops"] == 20
    assert set(report["val_accuracy_per_class"]) == {"hot", "warm", "background"}
    state = torch.load(out, weights_only=True)
    trunk = ResNetLevels("resnet18", pretrained=str(out), trainable_layers=3)
    assert isinstance(trunk.bn1, FrozenBatchNorm2d)
    assert torch.equal(trunk.conv1.weight, state["conv1.weight"])


def test_dataset_pretraining_is_cached_by_the_annotations_content(tmp_path: Path) -> None:
    ann, images = make_dataset(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  pretrained: dataset\npretrain:\n  annotations: {ann}\n"
                      f"  images: {images}\n  cache_dir: {tmp_path / 'cache'}\n")
    torch.set_num_threads(1)
    cfg = load_config(config, TINY)
    weights = resolve_pretrained(cfg, progress=False)
    assert weights == str(cache_path(cfg)) and Path(weights).is_file()
    first = cache_path(cfg)
    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"] = [9, 8, 7, 8]
    ann.write_text(json.dumps(data))
    assert cache_path(load_config(config, TINY)) != first


def test_dataset_needs_annotations_and_synthetic_does_not_read_them(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  pretrained: dataset\n")
    with pytest.raises(ConfigError, match="model.pretrained: dataset needs pretrain.annotations"):
        resolve_pretrained(load_config(config), progress=False)
    ann, images = make_dataset(tmp_path)
    config.write_text(f"pretrain:\n  annotations: {ann}\n  images: {images}\n")
    synthetic = load_config(config, ["model.pretrained=synthetic"])
    plain = load_config(config, ["model.pretrained=synthetic", "pretrain.annotations=null",
                                 "pretrain.images=null"])
    assert cache_path(synthetic) == cache_path(plain)  # the same synthetic trunk either way
    assert cache_path(load_config(config, ["model.pretrained=dataset"])) != cache_path(plain)


def test_images_without_annotations_is_refused(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  backbone: resnet18\n")
    assert cli(["pretrain", "--config", str(config), "--images", str(tmp_path)]) == 2
    assert "--annotations and --images go together" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="pretrain.images"):
        load_config(config, ["pretrain.images=x"])
