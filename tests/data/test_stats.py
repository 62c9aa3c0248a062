"""`mrae stats`: counts per class and size bucket, and the width-height plot."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrae.cli import main as cli_main
from mrae.data.sizes import COCO_AREA_RANGES, TINY_AREA_RANGES, bucket_counts, bucket_label
from mrae.data.stats import summarize

# (w, h, category id, iscrowd, segm area)
TRAIN_BOXES = [
    (4, 4, 1, 0, 10),  # very tiny
    (7.9, 8, 1, 0, 50),  # sqrt(63.2) < 8: very tiny
    (8, 8, 2, 0, 50),  # tiny
    (20, 10, 2, 0, 150),  # sqrt(200): tiny
    (20, 20, 2, 0, 300),  # small
    (40, 40, 3, 0, 1000),  # medium by bbox (1600), small by segm area (1000)
    (100, 100, 3, 0, 9000),  # large by bbox, medium by segm area
    (50, 50, 1, 1, 2000),  # crowd: not an object
]
VAL_BOXES = [(3, 3, 2, 0, 9), (30, 30, 2, 0, 800)]


def _write(path: Path, boxes: list) -> Path:
    anns = [
        {
            "id": i + 1,
            "image_id": 1 + i % 2,
            "category_id": c,
            "bbox": [0, 0, w, h],
            "iscrowd": crowd,
            "area": area,
        }
        for i, (w, h, c, crowd, area) in enumerate(boxes)
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200} for i in (1, 2, 3)]
    cats = [{"id": 1, "name": "ant"}, {"id": 2, "name": "bee"}, {"id": 3, "name": "cow"}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["stats", *argv])
    return code, out.getvalue(), err.getvalue()


def _row(stdout: str, first_cell: str) -> list[str]:
    for line in stdout.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{stdout}")


def test_bucket_counts_are_half_open():
    areas = np.array([0, 63.9, 64, 255, 256, 1023.9, 1024, 9215, 9216, 1e6])
    assert bucket_counts(areas, TINY_AREA_RANGES) == {"verytiny": 2, "tiny": 2, "small": 2}
    assert bucket_counts(areas, COCO_AREA_RANGES) == {
        "all": 10,
        "small": 6,
        "medium": 2,
        "large": 2,
    }
    assert bucket_label("tiny", TINY_AREA_RANGES) == "tiny (8-16 px)"
    assert bucket_label("verytiny", TINY_AREA_RANGES) == "very tiny (< 8 px)"
    assert bucket_label("large", COCO_AREA_RANGES) == "large (>= 96 px)"


def test_summarize_counts_by_class_and_size(tmp_path):
    from mrae.data.validate import load_coco_json

    data = load_coco_json(_write(tmp_path / "train.json", TRAIN_BOXES))
    s = summarize(data)
    assert (s["images"], s["images_with_objects"], s["objects"], s["crowd"]) == (3, 2, 7, 1)
    assert s["per_class"] == {1: 2, 2: 3, 3: 2}
    assert s["coco"] == {"small": 5, "medium": 1, "large": 1}
    assert s["tiny"] == {"verytiny": 2, "tiny": 2, "small": 1, ">= 32 px": 2}
    assert s["wh"].shape == (7, 2)
    assert summarize(data, area="segm")["coco"] == {"small": 6, "medium": 1, "large": 0}


def test_cli_prints_tables_and_writes_the_plot(tmp_path):
    train = _write(tmp_path / "train.json", TRAIN_BOXES)
    val = _write(tmp_path / "val.json", VAL_BOXES)
    plot = tmp_path / "plots" / "fig4.png"
    code, stdout, _ = _run(str(train), "--val", str(val), "--plot", str(plot))
    assert code == 0
    assert _row(stdout, "train")[1:5] == ["3", "2", "7", "1"]
    assert _row(stdout, "val")[1:5] == ["3", "2", "2", "0"]
    assert _row(stdout, "2") == ["2", "bee", "3", "2"]
    assert _row(stdout, "") == ["", "**total**", "7", "2"]
    assert _row(stdout, "very tiny (< 8 px)") == ["very tiny (< 8 px)", "2", "28.6%", "1", "50.0%"]
    assert _row(stdout, "medium (32-96 px)")[1:] == ["1", "14.3%", "0", "0.0%"]
    assert _row(stdout, ">= 32 px")[1:] == ["2", "28.6%", "0", "0.0%"]
    with Image.open(plot) as image:
        assert image.format == "PNG"
        assert image.width > image.height  # two panels side by side
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # something was drawn


def test_single_split_uses_the_file_name(tmp_path):
    train = _write(tmp_path / "instances.json", TRAIN_BOXES)
    code, stdout, _ = _run(str(train), "--area", "segm")
    assert code == 0
    assert _row(stdout, "instances.json")[3] == "7"
    assert _row(stdout, "large (>= 96 px)")[1:] == ["0", "0.0%"]


def test_plot_of_a_file_without_boxes(tmp_path):
    empty = _write(tmp_path / "empty.json", [])
    plot = tmp_path / "empty.png"
    assert _run(str(empty), "--plot", str(plot))[0] == 0
    assert plot.stat().st_size > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "malformed JSON at line 1 column 2"),
        ('{"images": [], "categories": []}', "missing top-level key(s) 'annotations'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = _run(str(path))
    assert code == 2 and message in err and err.count("\n") == 1


def test_bad_plot_extension(tmp_path):
    train = _write(tmp_path / "train.json", TRAIN_BOXES)
    code, _, err = _run(str(train), "--plot", str(tmp_path / "fig.notaformat"))
    assert code == 2 and "use a .png path" in err


def test_stats_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    train = _write(tmp_path / "train.json", TRAIN_BOXES)
    code = (
        "import sys; from mrae.cli import main; "
        f"rc = main(['stats', {str(train)!r}]); "
        "sys.exit(rc if 'torch' not in sys.modules else 99)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_output_says_sizes_are_original_image_pixels(tmp_path):
    train = _write(tmp_path / "train.json", TRAIN_BOXES)
    code, stdout, _ = _run(str(train))
    assert code == 0
    headers = [line for line in stdout.splitlines() if line.startswith(("| COCO size", "| box side"))]
    assert len(headers) == 2 and all("(original-image pixels)" in h for h in headers)
    assert "Sizes are in original-image pixels" in stdout and "resize" in stdout


def test_the_plot_replaces_a_link_and_never_writes_its_target(tmp_path):
    train = _write(tmp_path / "train.json", TRAIN_BOXES)
    photo, album = tmp_path / "photo.png", tmp_path / "album.png"
    photo.write_bytes(b"the user's photo")
    album.write_bytes(b"an album's picture")
    symlink, hard = tmp_path / "sizes.png", tmp_path / "sizes2.png"
    symlink.symlink_to(photo)
    os.link(album, hard)
    for plot in (symlink, hard):
        assert _run(str(train), "--plot", str(plot))[0] == 2  # not stats's file: refused
        assert _run(str(train), "--plot", str(plot), "--overwrite")[0] == 0
        assert not plot.is_symlink() and plot.stat().st_nlink == 1
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert photo.read_bytes() == b"the user's photo" and album.read_bytes() == b"an album's picture"
