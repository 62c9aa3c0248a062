"""CocoDetection, collate and build_loader, on a tiny dataset the tests write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from mrae.data.coco import CocoDetection, build_loader, collate
from mrae.errors import ConfigError, DataError

# Images: (id, file, mode, (width, height), boxes xywh with COCO category ids, crowd boxes).
# Category ids are not contiguous and not sorted: labels must be 2 -> 1, 5 -> 2, 90 -> 3.
CATEGORIES = [
    {"id": 90, "name": "toothbrush"},
    {"id": 5, "name": "airplane"},
    {"id": 2, "name": "bicycle"},
]
RGB_BOXES = [([5, 10, 10, 8], 90), ([20, 2, 6, 6], 2)]


def _draw(size: tuple[int, int], boxes: list, mode: str) -> Image.Image:
    """A black image with each box filled white (RGBA: opaque white on a transparent black)."""
    image = Image.new("RGB", size, (0, 0, 0))
    for (x, y, w, h), _ in boxes:
        image.paste((255, 255, 255), (x, y, x + w, y + h))
    if mode == "RGBA":
        image = image.convert("RGBA")
    return image.convert(mode)


@pytest.fixture
def dataset_files(tmp_path: Path) -> tuple[Path, Path]:
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    images, anns = [], []

    def add(image_id: int, name: str, size: tuple[int, int], boxes: list, crowd: list = ()) -> None:
        images.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        for bbox, cat in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": bbox,
                    "iscrowd": 0,
                }
            )
        for bbox, cat in crowd:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": bbox,
                    "iscrowd": 1,
                }
            )

    _draw((40, 30), RGB_BOXES, "RGB").save(images_dir / "rgb.png")
    add(1, "rgb.png", (40, 30), RGB_BOXES, crowd=[([0, 0, 4, 4], 5)])
    gray_boxes = [([4, 4, 8, 8], 5)]
    _draw((32, 24), gray_boxes, "L").save(images_dir / "gray.png")
    add(2, "gray.png", (32, 24), gray_boxes)
    rgba_boxes = [([10, 2, 6, 12], 2)]
    _draw((20, 20), rgba_boxes, "RGBA").save(images_dir / "rgba.png")
    add(3, "rgba.png", (20, 20), rgba_boxes)
    # EXIF orientation 6 ("rotate 90 degrees clockwise to display"): the file stores the displayed
    # 40 x 30 image rotated 90 degrees counter-clockwise (30 x 40); the box is in displayed pixels.
    exif_boxes = [([24, 4, 12, 10], 90)]
    stored = _draw((40, 30), exif_boxes, "RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(images_dir / "exif.jpg", exif=exif, quality=95)
    add(4, "exif.jpg", (40, 30), exif_boxes)
    _draw((16, 16), [], "RGB").save(images_dir / "crowd_only.png")
    add(5, "crowd_only.png", (16, 16), [], crowd=[([1, 1, 5, 5], 2)])

    ann_file = tmp_path / "instances.json"
    ann_file.write_text(
        json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES})
    )
    return images_dir, ann_file


def test_labels_are_contiguous_in_sorted_category_order(dataset_files):
    dataset = CocoDetection(*dataset_files)
    assert dataset.cat_ids == [2, 5, 90]
    assert dataset.label_to_cat == {1: 2, 2: 5, 3: 90}
    assert dataset.cat_to_label == {2: 1, 5: 2, 90: 3}
    assert dataset.class_names == ["bicycle", "airplane", "toothbrush"]
    assert dataset.num_classes == 3


def test_item_boxes_are_xyxy_without_crowd(dataset_files):
    dataset = CocoDetection(*dataset_files)
    assert dataset.ids == [1, 2, 3, 4, 5]  # eval keeps images without boxes
    image, target = dataset[0]
    assert image.dtype == torch.float32 and image.shape == (3, 30, 40)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert target["image_id"] == 1
    assert torch.equal(target["boxes"], torch.tensor([[5.0, 10, 15, 18], [20, 2, 26, 8]]))
    assert target["boxes"].dtype == torch.float32 and type(target["boxes"]) is torch.Tensor
    assert torch.equal(target["labels"], torch.tensor([3, 1]))
    assert target["labels"].dtype == torch.int64
    # The box covers the white patch the test drew.
    assert image[:, 10:18, 5:15].min() == 1.0 and image[:, 19:, :].max() == 0.0


def test_empty_image_for_eval_and_skipped_for_training(dataset_files):
    image, target = CocoDetection(*dataset_files)[4]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert CocoDetection(*dataset_files, train=True).ids == [1, 2, 3, 4]
    assert CocoDetection(*dataset_files, train=True, skip_empty=False).ids == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("index", [1, 2])  # grayscale, RGBA
def test_grayscale_and_rgba_load_as_rgb(dataset_files, index):
    image, target = CocoDetection(*dataset_files)[index]
    assert image.shape[0] == 3
    x1, y1, x2, y2 = target["boxes"][0].int().tolist()
    assert image[:, y1:y2, x1:x2].min() == 1.0
    assert image.sum() == pytest.approx(3 * (x2 - x1) * (y2 - y1))


def test_16bit_image_is_read_by_the_shared_reader_not_saturated(dataset_files):
    import numpy as np

    images_dir, ann_file = dataset_files
    ramp = (np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16)  # 0..61360
    Image.fromarray(ramp).save(images_dir / "gray.png")  # a 16-bit PNG, the JSON's 32 x 24
    image, _ = CocoDetection(*dataset_files)[1]
    assert torch.allclose(image[0], torch.from_numpy(ramp / 65535).float(), atol=1e-6)
    assert image.max() < 0.95  # convert("RGB") made every pixel above 255 white


def test_exif_rotated_jpeg_matches_its_box(dataset_files):
    image, target = CocoDetection(*dataset_files)[3]
    assert image.shape == (3, 30, 40)  # displayed size, not the stored 30 x 40
    x1, y1, x2, y2 = target["boxes"][0].int().tolist()
    assert (x1, y1, x2, y2) == (24, 4, 36, 14)
    inside = image[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].mean()
    outside = image[:, 18:, :20].mean()
    assert inside > 0.9 and outside < 0.1


def test_collate_and_loader(dataset_files):
    dataset = CocoDetection(*dataset_files)
    images, targets = collate([dataset[0], dataset[1]])
    assert [tuple(i.shape) for i in images] == [(3, 30, 40), (3, 24, 32)]
    assert [t["image_id"] for t in targets] == [1, 2]
    loader = build_loader(dataset, batch_size=2, shuffle=False, workers=0)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    assert [t["image_id"] for b in batches for t in b[1]] == [1, 2, 3, 4, 5]


def _epoch(dataset, workers: int, seed: int) -> list:
    loader = build_loader(dataset, batch_size=2, shuffle=True, workers=workers, seed=seed)
    return [(t["image_id"], t["boxes"].tolist()) for _, targets in loader for t in targets]


def test_loader_with_workers_repeats_order_by_seed(dataset_files):
    dataset = CocoDetection(*dataset_files, train=True)
    first, second = _epoch(dataset, 2, seed=3), _epoch(dataset, 2, seed=3)
    assert first == second
    assert sorted(i for i, _ in first) == [1, 2, 3, 4]
    others = [_epoch(dataset, 2, seed=s) for s in (4, 5)]
    assert any(o != first for o in others)


def test_loader_rejects_sampler_with_shuffle(dataset_files):
    dataset = CocoDetection(*dataset_files)
    with pytest.raises(ConfigError):
        build_loader(dataset, 1, shuffle=True, workers=0, sampler=range(len(dataset)))


def test_missing_image_file_names_file_and_id(dataset_files):
    images_dir, ann_file = dataset_files
    (images_dir / "gray.png").unlink()
    dataset = CocoDetection(images_dir, ann_file)
    with pytest.raises(DataError, match=r"gray\.png.*image id 2"):
        dataset[1]


def test_unreadable_image_file(dataset_files):
    images_dir, ann_file = dataset_files
    (images_dir / "rgba.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"rgba\.png.*image id 3") as error:
        CocoDetection(images_dir, ann_file)[2]
    assert "\n" not in str(error.value)


def test_truncated_image_file(dataset_files):
    images_dir, ann_file = dataset_files
    data = (images_dir / "exif.jpg").read_bytes()
    (images_dir / "exif.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"exif\.jpg.*image id 4"):
        CocoDetection(images_dir, ann_file)[3]


def test_image_size_that_disagrees_with_json(dataset_files):
    images_dir, ann_file = dataset_files
    Image.new("RGB", (33, 24)).save(images_dir / "gray.png")
    with pytest.raises(DataError, match=r"image id 2 is 33 x 24 px but .* says 32 x 24"):
        CocoDetection(images_dir, ann_file)[1]


def test_empty_training_set_is_an_error(tmp_path):
    ann_file = tmp_path / "crowd.json"
    ann_file.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 1}
                ],
                "categories": [{"id": 1, "name": "thing"}],
            }
        )
    )
    assert len(CocoDetection(tmp_path, ann_file)) == 1
    with pytest.raises(DataError, match=r"crowd\.json: the dataset is empty"):
        CocoDetection(tmp_path, ann_file, train=True)
