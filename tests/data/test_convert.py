"""`mrae convert` on small label files of each format, written here, with answers known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mrae.cli import main as cli_main
from mrae.data.convert import convert, image_size
from mrae.data.formats.visdrone import VISDRONE_CLASSES
from mrae.data.validate import load_coco_json


def _image(path: Path, width: int, height: int, **save: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 150)).save(path, **save)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(["convert", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _boxes(data: dict) -> list[tuple[int, int, list, int]]:
    """(image_id, category_id, bbox, iscrowd) per annotation, in file order."""
    return [(a["image_id"], a["category_id"], a["bbox"], a["iscrowd"]) for a in data["annotations"]]


# --- YOLO ----------------------------------------------------------------------------------------


@pytest.fixture
def yolo(tmp_path: Path) -> Path:
    root = tmp_path / "yolo"
    _image(root / "images" / "a.png", 100, 50)
    _image(root / "images" / "b.png", 40, 40)  # no label file: an image without objects
    _image(root / "images" / "sub" / "c.jpg", 64, 32)
    _write(root / "labels" / "a.txt", "\n".join([
        "0 0.5 0.5 0.2 0.4",       # [40, 15, 20, 20]
        "1 0.95 0.5 0.2 0.2",      # x 85..105 -> clipped to 100: [85, 20, 15, 10]
        "",                        # blank lines are skipped
        "0 0.5 0.5 0 0.1",         # zero width: dropped
        "1 0.1 0.1 0.3 0.1 0.3 0.5",  # a segment: its bounding box [10, 5, 20, 20]
    ]) + "\n")  # fmt: skip
    _write(root / "labels" / "sub" / "c.txt", "2 0.25 0.5 0.5 0.5\n")  # [0, 8, 32, 16]
    _write(root / "labels" / "classes.txt", "car\nperson\nboat\n")
    return root


def test_yolo_boxes_sizes_and_categories_exactly(yolo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "coco.json"
    code, stdout, err = _run(capsys, "--format", "yolo", "--images", str(yolo / "images"),
                             "--labels", str(yolo / "labels"), "--out", str(out))
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["images"] == [
        {"id": 1, "file_name": "a.png", "width": 100, "height": 50},
        {"id": 2, "file_name": "b.png", "width": 40, "height": 40},
        {"id": 3, "file_name": "sub/c.jpg", "width": 64, "height": 32},
    ]
    assert data["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "person"},
                                  {"id": 3, "name": "boat"}]
    assert _boxes(data) == [
        (1, 1, [40, 15, 20, 20], 0),
        (1, 2, [85, 20, 15, 10], 0),
        (1, 2, [10, 5, 20, 20], 0),
        (3, 3, [0, 8, 32, 16], 0),
    ]
    assert [a["id"] for a in data["annotations"]] == [1, 2, 3, 4]
    assert [a["area"] for a in data["annotations"]] == [400, 150, 400, 512]
    # the report: the names file used, the clipped and the dropped box
    assert "3 images (2 with a label file), 4 objects, 0 ignore regions, 3 categories" in stdout
    assert "clipped 1 boxes" in stdout and "dropped 1 degenerate boxes" in stdout
    assert str(yolo / "labels" / "classes.txt") in stdout


def test_yolo_labels_beside_images_and_data_yaml_names(tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    _image(folder / "x.png", 20, 10)
    _write(folder / "x.txt", "1 0.5 0.5 0.5 0.4\n")
    _write(tmp_path / "data.yaml", "path: .\nnames:\n  0: plane\n  1: ship\n")
    data, report = convert("yolo", folder)  # names found in the labels' parent folder
    assert report.names_file == str(tmp_path / "data.yaml")
    assert data["categories"] == [{"id": 1, "name": "plane"}, {"id": 2, "name": "ship"}]
    assert _boxes(data) == [(1, 2, [5, 3, 10, 4], 0)]


# --- VisDrone ------------------------------------------------------------------------------------


@pytest.fixture
def visdrone(tmp_path: Path) -> Path:
    root = tmp_path / "visdrone"
    _image(root / "images" / "0001.jpg", 100, 80)
    _write(root / "annotations" / "0001.txt", "\n".join([
        "10,20,30,40,1,4,0,1",    # car (4), occlusion 1
        "0,0,50,50,0,0,0,0",      # ignored region: one ignore region per category
        "5,5,10,10,1,11,0,0,",    # others (11), with VisDrone's trailing comma
        "90,70,20,20,1,1,1,2",    # pedestrian, clipped to [90, 70, 10, 10]
        "40,40,0,10,1,2,0,0",     # people with zero width: dropped
    ]) + "\n")  # fmt: skip
    return root


def test_visdrone_ignored_regions_others_and_flags(visdrone: Path) -> None:
    data, report = convert("visdrone", visdrone / "images", visdrone / "annotations")
    assert data["images"] == [{"id": 1, "file_name": "0001.jpg", "width": 100, "height": 80}]
    assert data["categories"] == [{"id": i + 1, "name": n} for i, n in enumerate(VISDRONE_CLASSES)]
    anns = data["annotations"]
    car = anns[0]
    assert (car["category_id"], car["bbox"], car["iscrowd"]) == (4, [10, 20, 30, 40], 0)
    assert (car["truncation"], car["occlusion"]) == (0, 1) and "ignore" not in car
    ignored = [a for a in anns if a["iscrowd"]]
    # the ignored region and "others" (default: ignore), each once per category
    assert [(a["category_id"], a["bbox"]) for a in ignored] == (
        [(c, [0, 0, 50, 50]) for c in range(1, 11)] + [(c, [5, 5, 10, 10]) for c in range(1, 11)]
    )
    assert all(a["ignore"] == 1 for a in ignored)
    person = anns[-1]
    assert (person["category_id"], person["bbox"], person["iscrowd"]) == (1, [90, 70, 10, 10], 0)
    assert len(anns) == 22
    assert (report.clipped, report.dropped_empty) == (1, 1)


@pytest.mark.parametrize(("others", "expected"), [("drop", []), ("class", [(11, [5, 5, 10, 10], 0)])])
def test_visdrone_others_dropped_or_a_class(visdrone: Path, others: str, expected: list) -> None:
    data, report = convert("visdrone", visdrone / "images", visdrone / "annotations", others=others)
    names = [c["name"] for c in data["categories"]]
    assert names == list(VISDRONE_CLASSES) + (["others"] if others == "class" else [])
    got = [(a["category_id"], a["bbox"], a["iscrowd"]) for a in data["annotations"]
           if a["bbox"] == [5, 5, 10, 10]]
    assert got == expected
    assert report.dropped_others == (1 if others == "drop" else 0)


# --- DOTA ----------------------------------------------------------------------------------------


@pytest.fixture
def dota(tmp_path: Path) -> Path:
    root = tmp_path / "dota"
    _image(root / "images" / "P0001.png", 60, 40)
    _image(root / "images" / "P0002.png", 30, 30)
    _write(root / "labelTxt" / "P0001.txt", "\n".join([
        "imagesource:GoogleEarth",
        "gsd:0.146",
        "10 10 30 5 35 25 15 30 small-vehicle 0",   # bounding box [10, 5, 25, 25]
        "50 30 70 30 70 50 50 50 plane 1",        # difficult, clipped to [50, 30, 10, 10]
    ]) + "\n")  # fmt: skip
    _write(root / "labelTxt" / "P0002.txt", "gsd:null\n1 1 5 1 5 5 1 5 harbor\n")  # no difficult
    return root


def test_dota_polygons_become_clipped_boxes_with_difficult_flag(dota: Path) -> None:
    data, report = convert("dota", dota / "images", dota / "labelTxt")
    assert data["images"] == [
        {"id": 1, "file_name": "P0001.png", "width": 60, "height": 40,
         "imagesource": "GoogleEarth", "gsd": 0.146},
        {"id": 2, "file_name": "P0002.png", "width": 30, "height": 30, "gsd": None},
    ]  # fmt: skip
    # names sorted from the files
    assert data["categories"] == [{"id": 1, "name": "harbor"}, {"id": 2, "name": "plane"},
                                  {"id": 3, "name": "small-vehicle"}]
    assert [(a["image_id"], a["category_id"], a["bbox"], a["iscrowd"], a["difficult"])
            for a in data["annotations"]] == [
        (1, 3, [10, 5, 25, 25], 0, 0),
        (1, 2, [50, 30, 10, 10], 0, 1),
        (2, 1, [1, 1, 4, 4], 0, 0),
    ]  # fmt: skip
    assert report.clipped == 1


def test_dota_names_order_and_difficult_as_ignore(dota: Path, tmp_path: Path) -> None:
    _write(tmp_path / "names.txt", "plane\nsmall-vehicle\nharbor\nship\n")
    data, _ = convert("dota", dota / "images", dota / "labelTxt", names=tmp_path / "names.txt",
                      difficult="ignore")
    assert [c["name"] for c in data["categories"]] == ["plane", "small-vehicle", "harbor", "ship"]
    assert [(a["category_id"], a["iscrowd"], a.get("ignore")) for a in data["annotations"]] == [
        (2, 0, None), (1, 1, 1), (3, 0, None)]


# --- Pascal VOC ----------------------------------------------------------------------------------

VOC_XML = """<annotation>
  <filename>000001.jpg</filename>
  <size><width>999</width><height>999</height><depth>3</depth></size>
  <object>
    <name>dog</name>
    <difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>
  </object>
  <object>
    <name>cat</name>
    <difficult>1</difficult>
    <bndbox><xmin>41</xmin><ymin>31</ymin><xmax>60</xmax><ymax>45</ymax></bndbox>
    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></part>
  </object>
</annotation>
"""


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    _image(root / "JPEGImages" / "000001.jpg", 50, 40)
    _write(root / "Annotations" / "000001.xml", VOC_XML)
    return root


def test_voc_one_based_boxes_difficult_and_image_size_from_file(voc: Path) -> None:
    data, report = convert("voc", voc / "JPEGImages", voc / "Annotations")
    # <size> says 999 x 999: the image file's 50 x 40 is used, and the difference is reported
    assert data["images"] == [{"id": 1, "file_name": "000001.jpg", "width": 50, "height": 40}]
    assert len(report.size_mismatch) == 1 and "999 x 999" in report.warnings()[0]
    assert data["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    # (1, 1)-(10, 20) inclusive, 1-based -> x 0..10, y 0..20; the cat is clipped to x <= 50
    assert [(a["category_id"], a["bbox"], a["iscrowd"], a["difficult"])
            for a in data["annotations"]] == [
        (2, [0, 0, 10, 20], 0, 0),
        (1, [40, 30, 10, 10], 0, 1),
    ]  # fmt: skip


# --- what holds for every format -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yolo", "visdrone", "dota", "voc"])
def test_output_passes_the_project_validator_unchanged(fmt, yolo, visdrone, dota, voc, tmp_path,
                                                       capsys) -> None:
    images, labels = {"yolo": (yolo / "images", yolo / "labels"),
                      "visdrone": (visdrone / "images", visdrone / "annotations"),
                      "dota": (dota / "images", dota / "labelTxt"),
                      "voc": (voc / "JPEGImages", voc / "Annotations")}[fmt]  # fmt: skip
    out = tmp_path / f"{fmt}.json"
    code, _, err = _run(capsys, "--format", fmt, "--images", str(images), "--labels", str(labels),
                        "--out", str(out))
    assert code == 0, err
    written = json.loads(out.read_text())
    checked = load_coco_json(out, fix_boxes=False)  # raises on any box outside its image
    assert checked == written
    for image in written["images"]:
        assert (image["width"], image["height"]) == Image.open(images / image["file_name"]).size


def test_exif_rotated_image_gets_its_displayed_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed as 30 x 80
    _image(tmp_path / "img" / "r.jpg", 80, 30, exif=exif)
    _write(tmp_path / "img" / "r.txt", "0 0.5 0.5 1 1\n")
    _write(tmp_path / "img" / "classes.txt", "car\n")
    assert image_size(tmp_path / "img" / "r.jpg") == (30, 80)
    data, _ = convert("yolo", tmp_path / "img")
    assert (data["images"][0]["width"], data["images"][0]["height"]) == (30, 80)
    assert data["annotations"][0]["bbox"] == [0, 0, 30, 80]


def test_images_beyond_pillows_pixel_limit_are_read(yolo: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # every test image is a "bomb" now
    data, report = convert("yolo", yolo / "images", yolo / "labels")
    assert [(i["width"], i["height"]) for i in data["images"]] == [(100, 50), (40, 40), (64, 32)]
    assert Image.MAX_IMAGE_PIXELS == 10  # restored
    # ... and the user is told that the loader will refuse them
    assert len(report.large) == 3 and "3 images have more than Pillow's limit of 10 pixels" in (
        report.warnings()[0])


def test_label_file_without_image_is_a_warning(yolo: Path, tmp_path: Path, capsys) -> None:
    _write(yolo / "labels" / "gone.txt", "0 0.5 0.5 0.1 0.1\n")
    out = tmp_path / "coco.json"
    code, _, err = _run(capsys, "--format", "yolo", "--images", str(yolo / "images"),
                        "--labels", str(yolo / "labels"), "--out", str(out))
    assert code == 0 and out.exists()
    assert err.count("\n") == 1 and "1 label files have no image" in err and "gone.txt" in err


def test_out_under_a_file_is_refused_before_reading(yolo: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    code, _, err = _run(capsys, "--format", "yolo", "--images", str(tmp_path / "missing"),
                        "--out", str(tmp_path / "afile" / "sub" / "coco.json"))
    assert code == 2 and f"{tmp_path / 'afile'} is a file, not a folder" in err


def test_existing_out_replaced_only_with_overwrite(yolo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "coco.json"
    out.write_text("mine")
    argv = ["--format", "yolo", "--images", str(yolo / "images"), "--labels", str(yolo / "labels"),
            "--out", str(out)]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert out.read_text() == "mine"
    code, _, _ = _run(capsys, *argv, "--overwrite")
    assert code == 0 and len(json.loads(out.read_text())["images"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["coco.json"]  # no temp


# --- bad input: one line naming the file (and line), exit 2, nothing written --------------------


def _yolo_argv(root: Path) -> list[str]:
    """The YOLO conversion of the fixture's images and labels folders."""
    return ["--format", "yolo", "--images", str(root / "images"), "--labels", str(root / "labels")]


def _bad_yolo_line(root: Path) -> tuple[list[str], str]:
    _write(root / "labels" / "a.txt", "0 0.5 0.5 0.2 0.4\n0 0.5 zero 0.1 0.1\n")
    return _yolo_argv(root), f"{root / 'labels' / 'a.txt'} line 2: coordinate 'zero'"


def _yolo_class_out_of_range(root: Path) -> tuple[list[str], str]:
    _write(root / "labels" / "a.txt", "\n7 0.5 0.5 0.2 0.4\n")
    return _yolo_argv(root), "a.txt line 2: class 7 is not an index 0..2"


def _yolo_in_pixels(root: Path) -> tuple[list[str], str]:
    _write(root / "labels" / "a.txt", "0 50 25 20 20\n")
    return _yolo_argv(root), "a.txt line 1: coordinates must be normalised"


def _missing_images_folder(root: Path) -> tuple[list[str], str]:
    return ["--format", "yolo", "--images", str(root / "nope")], "--images folder not found"


def _no_names_file(root: Path) -> tuple[list[str], str]:
    (root / "labels" / "classes.txt").unlink()
    return _yolo_argv(root), "no class-names file"


def _unreadable_image(root: Path) -> tuple[list[str], str]:
    (root / "images" / "b.png").write_bytes(b"not a picture")
    return _yolo_argv(root), f"{root / 'images' / 'b.png'}: cannot read the image"


def _wrong_labels_folder(root: Path) -> tuple[list[str], str]:
    return ["--format", "yolo", "--images", str(root / "images"), "--labels",
            str(root / "images"), "--names", str(root / "labels" / "classes.txt")], \
        "no label file matches any of the 3 images"


def _names_file_missing(root: Path) -> tuple[list[str], str]:
    return ["--format", "yolo", "--images", str(root / "images"), "--names",
            str(root / "nope.txt")], "nope.txt: --names file not found"


def _visdrone_short_line(root: Path) -> tuple[list[str], str]:
    _write(root / "ann" / "a.txt", "1,2,3,4,1,4,0,0\n1,2,3,4,1\n")
    return ["--format", "visdrone", "--images", str(root / "images"), "--labels",
            str(root / "ann")], "a.txt line 2: expected 8 comma-separated values"


def _dota_unknown_class(root: Path) -> tuple[list[str], str]:
    _write(root / "dota" / "a.txt", "gsd:0.5\n1 1 5 1 5 5 1 5 ship 0\n")
    _write(root / "names.txt", "plane\n")
    return ["--format", "dota", "--images", str(root / "images"), "--labels", str(root / "dota"),
            "--names", str(root / "names.txt")], "a.txt line 2: class 'ship' is not in"


def _voc_malformed_xml(root: Path) -> tuple[list[str], str]:
    _write(root / "xml" / "a.xml", "<annotation>\n  <object>\n    <name>dog</name>\n</annotation>\n")
    return ["--format", "voc", "--images", str(root / "images"), "--labels", str(root / "xml")], \
        "a.xml line 4: malformed XML (mismatched tag)"


def _voc_bad_coordinate(root: Path) -> tuple[list[str], str]:
    _write(root / "xml" / "a.xml", VOC_XML.replace("<xmax>60</xmax>", "<xmax>sixty</xmax>"))
    return ["--format", "voc", "--images", str(root / "images"), "--labels", str(root / "xml")], \
        "a.xml line 12: <xmax> 'sixty' is not a number"


@pytest.mark.parametrize("case", [
    _bad_yolo_line, _yolo_class_out_of_range, _yolo_in_pixels, _missing_images_folder,
    _no_names_file, _names_file_missing, _unreadable_image, _wrong_labels_folder, _visdrone_short_line,
    _dota_unknown_class, _voc_malformed_xml, _voc_bad_coordinate,
])  # fmt: skip
def test_bad_input_is_one_line_exit_2_nothing_written(case, yolo: Path, tmp_path: Path,
                                                      capsys) -> None:
    argv, expected = case(yolo)
    out = tmp_path / "out" / "coco.json"
    code, stdout, err = _run(capsys, *argv, "--out", str(out))
    assert code == 2
    assert err.startswith("mrae convert: error: ") and err.count("\n") == 1, err
    assert expected in err
    assert not out.exists() and not out.parent.exists()
