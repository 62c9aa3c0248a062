"""`mrae subset` on a hand-made COCO file whose answer per policy is known by construction."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from mrae.cli import main as cli_main
from mrae.commands.subset import parse_split
from mrae.data.subset import select_small, split_images
from mrae.errors import ConfigError

# Each image: boxes as (w, h, segm area, iscrowd). Small = w * h < 1024 (bbox rule) or area < 1024.
IMAGES = {
    1: [(10, 10, 80, 0), (20, 20, 300, 0)],  # all small: both policies
    2: [(10, 10, 80, 0), (50, 50, 2000, 0)],  # small + large: any-small only, the large one ignored
    3: [(60, 60, 3000, 0)],  # large only: neither
    4: [],  # no annotations: neither
    5: [(5, 5, 20, 0), (100, 100, 9000, 1)],  # small + a crowd region: both; the crowd stays crowd
    6: [(40, 40, 500, 0)],  # bbox 1600 px^2 but segm 500: small only with --area segm
    7: [(31, 33, 800, 0), (32, 32, 900, 0)],  # 1023 is small, 1024 is not (bbox): any-small only
    8: [(100, 100, 9000, 1)],  # crowd only: neither
}
# By construction (bbox rule):
ANY_SMALL = {1, 2, 5, 7}
SMALL_ONLY = {1, 5}
# segm rule: image 6 becomes small; image 7's 32 x 32 box (area 900) is small too.
ANY_SMALL_SEGM = {1, 2, 5, 6, 7}
SMALL_ONLY_SEGM = {1, 5, 6, 7}


def _coco() -> dict:
    images, anns = [], []
    for image_id, boxes in IMAGES.items():
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 200, "height": 200})
        for w, h, area, crowd in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1 + len(anns) % 2,
                    "bbox": [1, 2, w, h],
                    "area": area,
                    "iscrowd": crowd,
                    "segmentation": [[1, 2, 1 + w, 2, 1 + w, 2 + h]],
                }
            )
    return {
        "info": {"description": "hand-made"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


@pytest.fixture
def coco_file(tmp_path: Path) -> Path:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_coco()))
    return path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["subset", *argv])
    return code, out.getvalue(), err.getvalue()


def _image_ids(path: Path) -> set[int]:
    return {image["id"] for image in json.loads(path.read_text())["images"]}


@pytest.mark.parametrize(
    ("policy", "area", "expected"),
    [
        ("any-small", "bbox", ANY_SMALL),
        ("small-only", "bbox", SMALL_ONLY),
        ("any-small", "segm", ANY_SMALL_SEGM),
        ("small-only", "segm", SMALL_ONLY_SEGM),
    ],
)
def test_policies_keep_the_images_known_by_construction(
    coco_file, tmp_path, policy, area, expected
):
    out = tmp_path / "small.json"
    code, stdout, _ = _run(str(coco_file), "--out", str(out), "--policy", policy, "--area", area)
    assert code == 0
    assert _image_ids(out) == expected
    assert f"| subset | {len(expected)} | {len(expected) / len(IMAGES):.1%} |" in stdout
    assert "52,032" in stdout and "2,164" in stdout


def test_any_small_turns_larger_objects_into_ignore_regions(coco_file, tmp_path):
    out = tmp_path / "small.json"
    assert _run(str(coco_file), "--out", str(out))[0] == 0  # any-small, bbox: the defaults
    data = json.loads(out.read_text())
    by_image: dict[int, list] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(
            (a["bbox"][2], a["bbox"][3], a["iscrowd"], a.get("ignore"))
        )
    # The demoted objects carry "ignore": 1 beside iscrowd=1; image 5's real crowd has no "ignore".
    assert by_image == {
        1: [(10, 10, 0, None), (20, 20, 0, None)],
        2: [(10, 10, 0, None), (50, 50, 1, 1)],
        5: [(5, 5, 0, None), (100, 100, 1, None)],
        7: [(31, 33, 0, None), (32, 32, 1, 1)],
    }
    # Everything else is kept as it was: a valid COCO file pycocotools reads.
    assert data["info"] == {"description": "hand-made"} and len(data["categories"]) == 2
    assert all("segmentation" in a and "area" in a for a in data["annotations"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    assert sorted(coco.getImgIds()) == sorted(ANY_SMALL)


def test_table_counts_objects_ignore_regions_and_buckets(coco_file, tmp_path):
    _, stdout, _ = _run(str(coco_file), "--out", str(tmp_path / "s.json"))
    # any-small keeps 5 objects: 10x10, 20x20 (image 1), 10x10 (2), 5x5 (5), 31x33 (7).
    # Very tiny (< 8 px): 5x5; tiny (8-16 px): the two 10x10; small (16-32 px): 20x20 and 31x33.
    # Ignore regions: 50x50 and 32x32 (demoted) and image 5's crowd box.
    row = next(line for line in stdout.splitlines() if line.startswith("| subset"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["subset", "4", "50.0%", "5", "1", "2", "2", "0", "3"]


def test_split_is_deterministic_disjoint_and_complete(coco_file, tmp_path):
    out = tmp_path / "small.json"
    code, stdout, _ = _run(str(coco_file), "--out", str(out), "--split-val", "1", "--seed", "3")
    assert code == 0
    train, val = _image_ids(tmp_path / "small_train.json"), _image_ids(tmp_path / "small_val.json")
    assert len(val) == 1 and train | val == ANY_SMALL and not train & val
    assert "| train | 3 |" in stdout and "| val | 1 |" in stdout
    # Annotations follow their images.
    val_data = json.loads((tmp_path / "small_val.json").read_text())
    assert {a["image_id"] for a in val_data["annotations"]} == val
    # The same seed gives the same split; all seeds together reach more than one split.
    _run(str(coco_file), "--out", str(tmp_path / "again.json"), "--split-val", "1", "--seed", "3")
    assert _image_ids(tmp_path / "again_val.json") == val
    data = select_small(_coco())
    vals = {
        frozenset(i["id"] for i in split_images(data, 1, seed=s)[1]["images"]) for s in range(10)
    }
    assert len(vals) > 1


def test_split_by_fraction():
    data = select_small(_coco())
    train, val = split_images(data, 0.5, seed=0)
    assert len(val["images"]) == 2 and len(train["images"]) == 2
    assert len(train["annotations"]) + len(val["annotations"]) == len(data["annotations"])
    assert train["categories"] == val["categories"] == data["categories"]


@pytest.mark.parametrize(("value", "parsed"), [("5", 5), ("0.05", 0.05), (None, None)])
def test_parse_split(value, parsed):
    assert parse_split(value) == parsed


@pytest.mark.parametrize("value", ["0", "1.5", "-3", "abc", "1.0"])
def test_bad_split_values(value):
    with pytest.raises(ConfigError, match="--split-val"):
        parse_split(value)


def test_split_that_leaves_a_side_empty_is_an_error(coco_file, tmp_path):
    code, _, err = _run(str(coco_file), "--out", str(tmp_path / "s.json"), "--split-val", "4")
    assert code == 2 and "cannot put 4 of 4 images in the val split" in err


def test_empty_subset_is_an_error(tmp_path):
    data = _coco()
    data["annotations"] = [a for a in data["annotations"] if a["bbox"][2] * a["bbox"][3] >= 1024]
    path = tmp_path / "large.json"
    path.write_text(json.dumps(data))
    code, _, err = _run(str(path), "--out", str(tmp_path / "s.json"))
    assert code == 2
    assert err.startswith("mrae subset: error: ") and "large.json: no image is left" in err
    assert not (tmp_path / "s.json").exists()


def test_bad_input_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [], "annotations": []}')
    code, _, err = _run(str(path), "--out", str(tmp_path / "s.json"))
    assert code == 2 and "missing top-level key(s) 'categories'" in err and err.count("\n") == 1


def test_bad_max_area(coco_file, tmp_path):
    code, _, err = _run(str(coco_file), "--out", str(tmp_path / "s.json"), "--max-area", "0")
    assert code == 2 and "--max-area" in err


def test_input_is_not_changed():
    data = _coco()
    before = json.dumps(data)
    select_small(data)
    assert json.dumps(data) == before


def test_subset_does_not_import_torch(coco_file, tmp_path):
    import subprocess

    code = (
        "import sys; from mrae.cli import main; "
        f"rc = main(['subset', {str(coco_file)!r}, '--out', {str(tmp_path / 's.json')!r}]); "
        "sys.exit(rc if 'torch' not in sys.modules else 99)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_unwritable_output_is_an_error(coco_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _run(str(coco_file), "--out", str(blocker / "s.json"))
    assert code == 2 and "cannot write the subset" in err


def test_never_overwrites_the_input_or_an_existing_file(coco_file, tmp_path):
    before = coco_file.read_bytes()
    code, _, err = _run(str(coco_file), "--out", str(coco_file))
    assert code == 2 and "is the input file" in err and coco_file.read_bytes() == before
    # a split whose generated name lands on the input
    renamed = tmp_path / "x_train.json"
    renamed.write_bytes(before)
    code, _, err = _run(str(renamed), "--out", str(tmp_path / "x.json"), "--split-val", "1")
    assert code == 2 and "is the input file" in err and renamed.read_bytes() == before
    out = tmp_path / "mine.json"
    out.write_text("keep")
    code, _, err = _run(str(coco_file), "--out", str(out))
    assert code == 2 and "--overwrite" in err and out.read_text() == "keep"
    assert len(err.strip().splitlines()) == 1
    code, _, _ = _run(str(coco_file), "--out", str(out), "--overwrite")
    assert code == 0 and out.read_text() != "keep"
