"""load_coco_json: each kind of bad input gets a one-line DataError naming the file and the id."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from mrae.cli import main as cli_main
from mrae.data.validate import check_coco, check_image_files, load_coco_json, read_json
from mrae.errors import DataError

GOOD = {
    "images": [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
        {"id": 2, "file_name": "b.jpg", "width": 64, "height": 64},
    ],
    "annotations": [
        {
            "id": 10,
            "image_id": 1,
            "category_id": 3,
            "bbox": [10, 10, 20, 5],
            "iscrowd": 0,
            "area": 80.0,
        },
        {"id": 11, "image_id": 2, "category_id": 7, "bbox": [0, 0, 64, 64]},
    ],
    "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
}


def _write(tmp_path: Path, data, name: str = "ann.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _bad(tmp_path: Path, data, match: str) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match=match) as error:
        load_coco_json(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_good_file_gets_defaults(tmp_path):
    data = load_coco_json(_write(tmp_path, GOOD))
    assert [a["iscrowd"] for a in data["annotations"]] == [0, 0]
    # A given area is kept, a missing one is w * h.
    assert [a["area"] for a in data["annotations"]] == [80.0, 64 * 64]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_coco_json(tmp_path / "nope.json")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_coco_json(tmp_path)


def test_unreadable_file(tmp_path):
    # A path through a regular file cannot be opened (ENOTDIR), also as root.
    path = _write(tmp_path, GOOD) / "instances.json"
    with pytest.raises(DataError, match="cannot read the file"):
        load_coco_json(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_coco_json(path)


def test_malformed_json_names_line_and_column(tmp_path):
    text = '{\n  "images": [],\n  "annotations": [,]\n}'
    _bad(tmp_path, text, r"malformed JSON at line 3 column 19")


def test_truncated_json(tmp_path):
    _bad(tmp_path, json.dumps(GOOD)[:-30], r"malformed JSON at line 1 column \d+")


def test_top_level_not_an_object(tmp_path):
    _bad(tmp_path, [1, 2], "top level is a JSON array")


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(tmp_path, key):
    data = {k: v for k, v in GOOD.items() if k != key}
    _bad(tmp_path, data, f"missing top-level key.*'{key}'")


def test_top_level_key_of_wrong_type(tmp_path):
    _bad(tmp_path, {**GOOD, "annotations": {}}, "'annotations' must be a list")


def test_annotation_with_unknown_image(tmp_path):
    data = copy.deepcopy(GOOD)
    data["annotations"][1]["image_id"] = 99
    _bad(tmp_path, data, "annotation id 11 refers to image id 99")


def test_annotation_with_unknown_category(tmp_path):
    data = copy.deepcopy(GOOD)
    data["annotations"][0]["category_id"] = 4
    _bad(tmp_path, data, "annotation id 10 refers to category id 4")


@pytest.mark.parametrize(
    ("where", "change", "match"),
    [
        ("images", {"id": 1}, "image id 1 appears twice"),
        ("images", {"id": "x"}, r"images\[1\] has no integer 'id'"),
        ("images", {"width": 0}, "image id 2 .* needs a positive 'width'"),
        ("images", {"file_name": None}, "image id 2 has no 'file_name'"),
        ("annotations", {"id": 10}, "annotation id 10 appears twice"),
        ("annotations", {"bbox": [1, 2, 3]}, "annotation id 11 has 'bbox'"),
        ("annotations", {"bbox": [1, 2, "3", 3]}, "annotation id 11 has 'bbox'"),
        ("annotations", {"bbox": [1, 2, float("nan"), 3]}, "annotation id 11 has 'bbox'"),
        ("annotations", {"iscrowd": 2}, "annotation id 11 has 'iscrowd' 2"),
        ("annotations", {"area": "big"}, "annotation id 11 has 'area'"),
        ("categories", {"id": 3}, "category id 3 appears twice"),
        ("categories", {"name": 5}, "category id 7 has no 'name'"),
    ],
)
def test_bad_entries(tmp_path, where, change, match):
    data = copy.deepcopy(GOOD)
    data[where][-1].update(change)
    _bad(tmp_path, json.dumps(data), match)
  # json writes float("nan") as NaN and reads it back


def test_boxes_clipped_and_dropped_are_counted(tmp_path, caplog):
    data = copy.deepcopy(GOOD)
    anns = data["annotations"]
    anns += [
        {"id": 12, "image_id": 1, "category_id": 3, "bbox": [90, -5, 20, 20]},  # clipped
        {"id": 13, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4]},  # zero width: dropped
        {"id": 14, "image_id": 1, "category_id": 3, "bbox": [5, 5, 4, -1]},  # negative: dropped
        {"id": 15, "image_id": 2, "category_id": 7, "bbox": [70, 10, 5, 5]},  # outside: dropped
    ]
    path = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="mrae.data.validate"):
        loaded = load_coco_json(path)
    assert [a["id"] for a in loaded["annotations"]] == [10, 11, 12]
    assert loaded["annotations"][2]["bbox"] == [90, 0, 10, 15]
    assert loaded["annotations"][2]["area"] == 150
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "clipped 1 box" in warnings[0]
    assert "dropped 2 boxes with zero or negative" in warnings[0]
    assert "dropped 1 box lying outside" in warnings[0]
    assert str(path) in warnings[0] and "\n" not in warnings[0]

    report = check_coco(copy.deepcopy(data), "x.json")
    assert (report.clipped, report.dropped_empty, report.dropped_outside) == (1, 2, 1)
    assert report.examples == [12, 13, 14, 15]


def test_strict_mode_rejects_bad_boxes(tmp_path):
    data = copy.deepcopy(GOOD)
    data["annotations"][0]["bbox"] = [95, 0, 10, 10]
    with pytest.raises(DataError, match="annotation id 10 has a box .* outside its image"):
        load_coco_json(_write(tmp_path, data), fix_boxes=False)


def test_clean_file_logs_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        load_coco_json(_write(tmp_path, GOOD))
    assert not caplog.records


def test_cli_reports_bad_json_in_one_line_with_exit_2(tmp_path, capsys):
    path = _write(tmp_path, '{"images": [}')
    assert cli_main(["stats", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mrae stats: error: ") and str(path) in err and "line 1 column 13" in err
    assert "\n" not in err


@pytest.mark.parametrize("fast", [False, True])
def test_both_parsers_read_the_same_and_report_the_same_errors(tmp_path, fast):
    good = _write(tmp_path, GOOD)
    assert read_json(good, fast=fast) == json.loads(good.read_text())
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [],\n "annotations": ]}')
    with pytest.raises(DataError, match="malformed JSON at line 2"):
        read_json(broken, fast=fast)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        read_json(binary, fast=fast)


# ----------------------------------------------------------------------------- image files


def _images_json(tmp_path: Path, names: list[str], name: str = "ann.json") -> Path:
    images = [{"id": i, "file_name": n, "width": 8, "height": 8} for i, n in enumerate(names, 1)]
    return _write(tmp_path, {"images": images, "annotations": [], "categories": []}, name)


def test_check_image_files_passes_when_every_file_exists(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        (folder / name).write_bytes(b"")
    ann = _images_json(tmp_path, ["a.png", "sub/b.png"])
    check_image_files({"train_images": str(folder), "train_annotations": str(ann),
                       "val_images": None, "val_annotations": None})


def test_check_image_files_names_the_first_missing_files_and_the_count(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    names = [f"{i:03d}.png" for i in range(10)]
    for name in names[:2]:
        (folder / name).write_bytes(b"")
    (folder / names[2]).mkdir()  # a folder is not an image file
    train = _images_json(tmp_path, names[:2], "train.json")
    val = _images_json(tmp_path, names, "val.json")
    paths = {"train_images": folder, "train_annotations": train, "val_images": folder,
             "val_annotations": val}
    with pytest.raises(DataError) as error:
        check_image_files(paths)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{val}: 8 of its 10 image files are missing")
    assert "002.png, 003.png, 004.png, 005.png, 006.png, ..." in message and "007.png" not in message
    assert "data.val_images" in message
