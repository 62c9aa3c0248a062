"""`mrae convert`'s VOC box conventions (pinned against a drawn box), --list, the class options and
the one table of readers."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mrae.cli import main as cli_main
from mrae.data import formats
from mrae.data.class_map import ClassMap
from mrae.data.convert import convert
from mrae.data.formats import FORMATS, Format
from mrae.data.formats.common import Found, Label, ReadOptions
from mrae.errors import ConfigError, DataError

# The drawn box: columns 10..19 and rows 5..14 (0-based pixels) of a 40 x 30 image, white on black.
BOX = (10, 5, 20, 15)  # its corners x1 y1 x2 y2 (pixel edges)


def _voc(name: str, xmin: int, ymin: int, xmax: int, ymax: int) -> str:
    return (f"<annotation><size><width>40</width><height>30</height></size><object><name>{name}"
            f"</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
            f"<ymax>{ymax}</ymax></bndbox></object></annotation>\n")


def _drawn(root: Path, xml: str) -> Path:
    """A 40 x 30 PNG with the white box drawn into it and its VOC XML beside it."""
    root.mkdir(parents=True, exist_ok=True)
    image = Image.new("L", (40, 30), 0)
    ImageDraw.Draw(image).rectangle((BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1), fill=255)
    image.save(root / "a.png")
    (root / "a.xml").write_text(xml, encoding="utf-8")
    return root


def _covers_the_drawing_exactly(root: Path, bbox: list[float]) -> bool:
    """Whether [x, y, w, h] holds every white pixel and no black one."""
    pixels = np.asarray(Image.open(root / "a.png")) > 0
    x, y, w, h = (int(v) for v in bbox)
    inside = np.zeros_like(pixels)
    inside[y:y + h, x:x + w] = True
    return bool((inside == pixels).all())


@pytest.mark.parametrize(("convention", "written"), [
    ("corners", (10, 5, 20, 15)),  # HIT-UAV: the box's pixel-edge corners
    ("pixels", (11, 6, 20, 15)),   # Pascal VOC: 1-based, first and last pixel inclusive
])  # fmt: skip
def test_voc_conventions_cover_the_drawn_box(tmp_path: Path, convention: str, written) -> None:
    root = _drawn(tmp_path / convention, _voc("car", *written))
    data, report = convert("voc", root, voc_boxes=convention)
    bbox = data["annotations"][0]["bbox"]
    assert bbox == [10, 5, 10, 10]
    assert _covers_the_drawing_exactly(root, bbox)
    assert report.suspicious == []


def test_corners_read_as_pixels_are_one_pixel_off_and_a_zero_is_reported(tmp_path: Path) -> None:
    root = _drawn(tmp_path / "c", _voc("car", *BOX))
    bbox = convert("voc", root)[0]["annotations"][0]["bbox"]
    assert bbox == [9, 4, 11, 11] and not _covers_the_drawing_exactly(root, bbox)
    (root / "a.xml").write_text(_voc("car", 0, 3, 9, 8), encoding="utf-8")  # at the left edge
    data, report = convert("voc", root)
    assert data["annotations"][0]["bbox"] == [0, 2, 9, 6]  # clipped at -1
    assert len(report.suspicious) == 1 and "--voc-boxes corners" in report.warnings()[0]
    assert convert("voc", root, voc_boxes="corners")[1].warnings() == []


def _hituav_like(root: Path) -> Path:
    """Three images of VOC corners, a DontCare region and an ImageSets list."""
    root.mkdir(parents=True)
    for stem in ("x0", "x1", "x2"):
        Image.new("L", (40, 30), 0).save(root / f"{stem}.jpg")
    objects = {"x0": [("Person", 1, 1, 5, 9), ("DontCare", 20, 0, 40, 10)],
               "x1": [("Car", 0, 0, 12, 8), ("Bicycle", 3, 3, 9, 9), ("OtherVehicle", 1, 1, 20, 9)],
               "x2": [("Car", 5, 5, 15, 15)]}  # fmt: skip
    for stem, objs in objects.items():
        body = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
                       f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
                       for n, a, b, c, d in objs)  # fmt: skip
        (root / f"{stem}.xml").write_text(f"<annotation>{body}</annotation>", encoding="utf-8")
    (root / "train.txt").write_text("x1\nx0\n", encoding="utf-8")
    return root


def _rows(data: dict[str, Any]) -> list[tuple[str, str, list[float], int]]:
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {i["id"]: i["file_name"] for i in data["images"]}
    return [(files[a["image_id"]], names[a["category_id"]], a["bbox"], a["iscrowd"])
            for a in data["annotations"]]


def test_list_ignore_classes_and_categories(tmp_path: Path) -> None:
    root = _hituav_like(tmp_path / "h")
    data, _ = convert("voc", root, voc_boxes="corners", image_list=root / "train.txt",
                      classes=ClassMap(ignore=("DontCare",)))
    assert [i["file_name"] for i in data["images"]] == ["x1.jpg", "x0.jpg"]  # the list's order
    assert [c["name"] for c in data["categories"]] == ["Bicycle", "Car", "OtherVehicle", "Person"]
    rows = _rows(data)
    assert rows[:3] == [("x1.jpg", "Car", [0, 0, 12, 8], 0), ("x1.jpg", "Bicycle", [3, 3, 6, 6], 0),
                        ("x1.jpg", "OtherVehicle", [1, 1, 19, 8], 0)]
    assert rows[3] == ("x0.jpg", "Person", [1, 1, 4, 8], 0)
    # DontCare: an ignore region of every class, never a category
    assert rows[4:] == [("x0.jpg", n, [20, 0, 20, 10], 1)
                        for n in ("Bicycle", "Car", "OtherVehicle", "Person")]


def test_map_merges_and_classes_keep_in_their_order(tmp_path: Path) -> None:
    root = _hituav_like(tmp_path / "h")
    merged, _ = convert("voc", root, voc_boxes="corners", classes=ClassMap(
        rename={"Car": "vehicle", "OtherVehicle": "vehicle"}, ignore=("DontCare",)))
    assert [c["name"] for c in merged["categories"]] == ["Bicycle", "vehicle", "Person"]
    assert [r[1] for r in _rows(merged) if not r[3]] == ["Person", "vehicle", "Bicycle", "vehicle",
                                                        "vehicle"]
    kept, report = convert("voc", root, voc_boxes="corners", classes=ClassMap(
        keep=("vehicle", "Person"), rename={"Car": "vehicle", "OtherVehicle": "vehicle"}))
    assert kept["categories"] == [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "Person"}]
    assert [r[1] for r in _rows(kept)] == ["Person", "vehicle", "vehicle", "vehicle"]
    assert report.dropped_classes == 2  # the Bicycle and the DontCare box


def test_yolo_indices_are_named_before_mapping(tmp_path: Path) -> None:
    (tmp_path / "y").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "y" / "a.png")
    (tmp_path / "y" / "a.txt").write_text("0 0.5 0.5 0.5 0.4\n2 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n")
    (tmp_path / "y" / "classes.txt").write_text("car\ntruck\nbus\n")
    data, _ = convert("yolo", tmp_path / "y", classes=ClassMap(rename={"bus": "truck"}))
    assert data["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "truck"}]
    assert [a["category_id"] for a in data["annotations"]] == [1, 2, 2]


@pytest.mark.parametrize(("classes", "says"), [
    (ClassMap(keep=("car",)), "--classes: 'car' is not a class"),
    (ClassMap(rename={"Truck": "vehicle"}), "--map: 'Truck' is not a class"),
    (ClassMap(ignore=("dontcare",)), "--ignore-classes: 'dontcare' is not a class"),
    (ClassMap(keep=("Car",), rename={"Car": "vehicle"}), "--classes: 'Car' is not a class"),
])  # fmt: skip
def test_a_class_the_labels_lack_is_refused(tmp_path: Path, classes: ClassMap, says: str) -> None:
    root = _hituav_like(tmp_path / "h")
    with pytest.raises(ConfigError, match=says):
        convert("voc", root, voc_boxes="corners", classes=classes)


@pytest.mark.parametrize(("argv", "says"), [
    (["--map", "Car"], "give old=new pairs"),
    (["--map", "Car=a,Car=b"], "'Car' is mapped twice"),
    (["--classes", "Car,,Person"], "give class names separated by commas"),
    (["--classes", "Car,Car"], "'Car' is given twice"),
    (["--list", "nope.txt"], "nope.txt: --list file not found"),
    (["--voc-boxes", "corners", "--format", "yolo"], "--voc-boxes applies to voc labels"),
])  # fmt: skip
def test_bad_class_options_are_one_line(tmp_path: Path, capsys, argv: list[str], says: str) -> None:
    root = _hituav_like(tmp_path / "h")
    (root / "x9.xml").unlink(missing_ok=True)
    out = tmp_path / "out.json"
    argv = [a.replace("nope.txt", str(tmp_path / "nope.txt")) for a in argv]
    base = ["convert", "--format", "voc", "--images", str(root), "--out", str(out)]
    assert cli_main(base + argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and not out.exists()


def test_list_naming_a_missing_image_names_the_line(tmp_path: Path) -> None:
    root = _hituav_like(tmp_path / "h")
    (root / "val.txt").write_text("x2\nx7\n")
    with pytest.raises(DataError, match=r"val.txt line 2: no image 'x7'"):
        convert("voc", root, image_list=root / "val.txt")


def test_command_line_hituav_recipe(tmp_path: Path, capsys) -> None:
    root = _hituav_like(tmp_path / "h")
    out = tmp_path / "train.json"
    assert cli_main(["convert", "--format", "voc", "--voc-boxes", "corners", "--images", str(root),
                     "--list", str(root / "train.txt"), "--ignore-classes", "DontCare",
                     "--out", str(out)]) == 0
    assert "2 images (2 with a label file), 4 objects, 1 ignore regions" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["annotations"]) == 8


# --- the one table of readers --------------------------------------------------------------------


def test_every_reader_has_the_one_signature() -> None:
    names = {name: list(inspect.signature(f.read).parameters) for name, f in FORMATS.items()}
    assert names == {name: ["path", "image", "options"] for name in FORMATS}


def test_an_unknown_format_is_refused_not_read_as_voc(tmp_path: Path) -> None:
    root = _hituav_like(tmp_path / "h")
    with pytest.raises(ConfigError, match="unknown format 'cvat'"):
        convert("cvat", root)


def test_a_format_with_one_label_file_per_dataset(tmp_path: Path, monkeypatch) -> None:
    """Room for CVAT XML and the like: ``suffix=None``, the reader gets the dataset's file."""
    root = _hituav_like(tmp_path / "h")
    dataset = tmp_path / "all.json"
    dataset.write_text(json.dumps({"x0.jpg": [["Car", 1, 2, 5, 6]], "x2.jpg": []}))

    def read_table(path: Path, image: dict[str, Any], options: ReadOptions) -> Found:
        rows = json.loads(path.read_text()).get(image["file_name"], [])
        return Found([Label(r[0], tuple(r[1:]), f"{path} {image['file_name']}") for r in rows])

    monkeypatch.setitem(formats.FORMATS, "table", Format(read_table, None))
    data, _ = convert("table", root, dataset)
    assert len(data["images"]) == 3
    assert _rows(data) == [("x0.jpg", "Car", [1, 2, 4, 4], 0)]
    with pytest.raises(DataError, match="needs --labels"):
        convert("table", root)
