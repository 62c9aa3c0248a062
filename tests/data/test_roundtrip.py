"""synth -> COCO JSON -> CocoDetection: the boxes and labels the model sees are the JSON's."""

import json

import torch

from mrae.data.coco import CocoDetection, build_loader
from mrae.data.synth import generate
from mrae.data.synth_scene import CLASSES


def test_synth_to_dataset_round_trip(tmp_path):
    paths = generate(tmp_path, train_images=3, val_images=1, seed=11, width=160, height=96,
                     workers=0, progress=False)
    data = json.loads(open(paths["train_annotations"]).read())
    dataset = CocoDetection(paths["train_images"], paths["train_annotations"], train=False)
    assert dataset.class_names == list(CLASSES)
    assert len(dataset) == 3
    for index, image_id in enumerate(dataset.ids):
        image, target = dataset[index]
        assert image.shape == (3, 96, 160) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        expected = [a for a in data["annotations"] if a["image_id"] == image_id]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in expected)])
        labels = [dataset.cat_to_label[a["category_id"]] for a in expected]
        assert torch.allclose(target["boxes"], boxes.float(), atol=1e-4)
        assert target["labels"].tolist() == labels
        assert target["image_id"] == image_id


def test_loader_batches_synth(tmp_path):
    paths = generate(tmp_path, train_images=4, val_images=1, seed=2, width=128, height=96,
                     workers=0, progress=False)
    dataset = CocoDetection(paths["train_images"], paths["train_annotations"], train=True)
    images, targets = next(iter(build_loader(dataset, batch_size=2, shuffle=True, workers=0)))
    assert len(images) == len(targets) == 2
    assert all(t["boxes"].shape[1] == 4 for t in targets)
