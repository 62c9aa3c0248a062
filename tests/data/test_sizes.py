"""shrink_warning: `mrae train` is told when the model's resize makes the typical box tiny."""

from __future__ import annotations

import numpy as np

from mrae.data.anchors import resize_boxes
from mrae.data.sizes import shrink_warning


def coco(width: int, height: int, sides: list[float]) -> dict:
    """One image of ``width`` x ``height`` px with square boxes of the given sides (px)."""
    anns = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [1.0, 1.0, s, s], "iscrowd": 0}
            for i, s in enumerate(sides, 1)]
    anns.append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 2.0, 2.0], "iscrowd": 1})
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
            "annotations": anns, "categories": [{"id": 1, "name": "car"}]}


def _number_after(text: str, key: str) -> int:
    return int(text.split(key)[1].split()[0].strip(",=])"))


def test_a_drone_picture_resized_to_512_warns_and_the_suggestion_fixes_it():
    data = coco(1920, 1080, [24.0, 27.0, 30.0])  # 0.267x: the median 27 px becomes 7.2 px
    message = shrink_warning(data, 300, 512)
    assert message is not None and "\n" not in message
    assert "from 27.0 to 7.2 px" in message and "slicing" in message
    assert "model.min_size 300, model.max_size 512" in message
    min_size = _number_after(message, "model.min_size=")
    max_size = _number_after(message, "model.max_size=")
    boxes, _ = resize_boxes(np.array([[1.0, 1.0, 27.0, 27.0]]), np.array([[1080.0, 1920.0]]),
                            min_size, max_size)
    assert boxes[0, 2] >= 8.0  # the suggested resize keeps the median box at 8 px


def test_no_warning_when_the_resize_keeps_boxes_large_enough_or_does_not_shrink():
    assert shrink_warning(coco(1920, 1080, [40.0, 50.0]), 300, 512) is None  # 10.7 px and more
    assert shrink_warning(coco(512, 300, [4.0, 5.0, 6.0]), 300, 512) is None  # scale 1.0: tiny as labelled
    assert shrink_warning(coco(512, 300, []), 300, 512) is None  # crowd boxes only


def test_fixed_size_is_named_in_the_warning():
    message = shrink_warning(coco(1024, 1024, [20.0]), 300, 512, fixed_size=[256, 256])
    assert message is not None and "model.fixed_size [256, 256]" in message
    assert "model.fixed_size=[410,410]" in message  # 256 * 8 / 5, rounded up
