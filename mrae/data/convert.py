"""`mrae convert`: YOLO txt, VisDrone-DET, DOTA and Pascal VOC labels turned into a COCO JSON.

The images are listed from ``--images`` (recursively, sorted; ``file_name`` is the path relative
to that folder, so the output works as ``data.*_images`` / ``data.*_annotations`` of a config).
Each image's label file is ``--labels`` (default: the images folder) + the image's relative path
with the format's suffix (``.txt``, VOC ``.xml``); an image without one is an image with no
objects. Every image's size is read from its file header (Pillow, no decoding), EXIF orientation
applied as the project's loader does (:mod:`mrae.data.coco`); the labels' own sizes (VOC
``<size>``) are never trusted, only compared and reported. Boxes are clipped to the image; boxes
with no area (as written or after clipping) are dropped, counted in the report. The result is
checked with :func:`mrae.data.validate.check_coco` before it is written (atomically,
:func:`write_coco`).

Each format has its reader in :mod:`mrae.data.formats` (its docstring gives the format's rules):
``category_id`` 1..C; ``iscrowd=1`` plus ``"ignore": 1`` marks an ignore region, which COCOeval
ignores and training leaves out, as ``mrae subset`` does with ``iscrowd``. Class names: YOLO's from
a names file, VisDrone's fixed, DOTA's and VOC's from ``--names`` or sorted from the files.

DOTA and VOC ``difficult`` objects keep a ``"difficult": 1`` key and stay objects (iscrowd 0) by
default; ``--difficult ignore`` makes them ignore regions, as the DOTA and VOC metrics treat them.

Why no library: ``supervision`` (0.31.2) reads YOLO and VOC (not VisDrone or DOTA) into its own
``Detections`` and writes COCO, but has no difficult flags, ignore regions or line-numbered
errors, and installs PyAV (a 36 MB wheel), requests and pydeprecate beside its own 0.5 MB wheel
(releases up to 0.25 require opencv-python, 61 MB as the headless wheel); two of four formats
would still be ours. These readers are small parsers over the standard library, Pillow, PyYAML
and tqdm, which the project already depends on.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from mrae.data.formats.common import Label, read_names
from mrae.data.formats.dota import read_dota
from mrae.data.formats.visdrone import VISDRONE_CLASSES, VISDRONE_OTHERS, read_visdrone
from mrae.data.formats.voc import read_voc
from mrae.data.formats.yolo import NAMES_FILES, find_names_file, read_yolo
from mrae.data.validate import check_coco
from mrae.errors import ConfigError, DataError
from mrae.files import write_text_atomic
from mrae.inputs import LABEL_LIMIT, check_regular

FORMATS = ("yolo", "visdrone", "dota", "voc")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABEL_SUFFIX = {"yolo": ".txt", "visdrone": ".txt", "dota": ".txt", "voc": ".xml"}
DIFFICULT = ("flag", "ignore")
#: Show a progress bar (on a terminal) from this many images on.
PROGRESS_MIN = 200
# EXIF orientations 5..8 turn the picture a quarter turn: width and height swap.
_ORIENTATION = 0x0112
_QUARTER_TURNS = {5, 6, 7, 8}


@dataclass
class Report:
    """What :func:`convert` counted along the way."""

    labelled: int = 0  # images with a label file
    clipped: int = 0  # boxes extending outside their image, clipped to it
    dropped_empty: int = 0  # zero or negative width/height as written
    dropped_outside: int = 0  # nothing left inside the image after clipping
    dropped_others: int = 0  # VisDrone "others" under --visdrone-others drop
    ignore_regions: int = 0  # ignore regions kept (one annotation each, or one per category)
    names_file: str | None = None
    size_mismatch: list[str] = field(default_factory=list)  # VOC <size> != the image file's
    orphans: list[str] = field(default_factory=list)  # label files without an image
    large: list[str] = field(default_factory=list)  # images above Pillow's pixel limit
    pixel_limit: int | None = None  # that limit (PIL.Image.MAX_IMAGE_PIXELS) when converted

    def summary(self, data: dict[str, Any]) -> str:
        """Lines for the terminal: images, objects, ignore regions, categories, boxes changed."""
        anns = data["annotations"]
        crowd = sum(1 for a in anns if a["iscrowd"])
        regions = f"{crowd:,} ignore regions"
        if crowd != self.ignore_regions:
            regions = (f"{self.ignore_regions:,} ignore regions ({crowd:,} annotations: those of "
                       "every class once per category)")
        lines = [
            f"{len(data['images']):,} images ({self.labelled:,} with a label file), "
            f"{len(anns) - crowd:,} objects, {regions}, {len(data['categories'])} categories"
            + (f" (names from {self.names_file})" if self.names_file else "")
        ]
        changed = []
        if self.clipped:
            changed.append(f"clipped {self.clipped:,} boxes to their image")
        if self.dropped_empty + self.dropped_outside:
            changed.append(
                f"dropped {self.dropped_empty + self.dropped_outside:,} degenerate boxes "
                f"({self.dropped_empty:,} with zero or negative size, "
                f"{self.dropped_outside:,} outside their image)"
            )
        if self.dropped_others:
            changed.append(f"dropped {self.dropped_others:,} VisDrone 'others' objects")
        if changed:
            lines.append("; ".join(changed))
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        """One line per kind of oddity that did not stop the conversion."""
        lines = []
        if self.orphans:
            lines.append(
                f"{len(self.orphans):,} label files have no image and were not used "
                f"(e.g. {self.orphans[0]}); check --images and --labels"
            )
        if self.large:
            lines.append(
                f"{len(self.large):,} images have more than Pillow's limit of "
                f"{self.pixel_limit:,} pixels (e.g. {self.large[0]}), which it refuses to decode "
                "as a decompression bomb; raise PIL.Image.MAX_IMAGE_PIXELS or cut them into tiles"
            )
        if self.size_mismatch:
            lines.append(
                f"{len(self.size_mismatch):,} label files state another <size> than their image "
                f"file (e.g. {self.size_mismatch[0]}); the image files' sizes are used"
            )
        return lines


def convert(
    fmt: str,
    images: str | Path,
    labels: str | Path | None = None,
    *,
    names: str | Path | None = None,
    difficult: str = "flag",
    others: str = "ignore",
    progress: bool = False,
) -> tuple[dict[str, Any], Report]:
    """Read a folder of images and their labels in ``fmt``; return the COCO dict and the report.

    See the module docstring for the rules of each format. Raises DataError (naming the file, and
    the line where there is one) on a missing folder, an unreadable image or a malformed label.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if difficult not in DIFFICULT:
        raise ConfigError(f"unknown --difficult {difficult!r}; choose one of {', '.join(DIFFICULT)}")
    if others not in VISDRONE_OTHERS:
        raise ConfigError(f"unknown --visdrone-others {others!r}; choose one of "
                          f"{', '.join(VISDRONE_OTHERS)}")
    images_dir = _folder(images, "--images")
    labels_dir = images_dir if labels is None else _folder(labels, "--labels")
    suffix = LABEL_SUFFIX[fmt]
    report = Report()

    class_names: list[str] | None = None
    names_path = Path(names) if names is not None else None
    if fmt == "yolo" and names_path is None:
        names_path = find_names_file(labels_dir)
        if names_path is None:
            raise DataError(
                f"{labels_dir}: no class-names file ({', '.join(NAMES_FILES)}) beside the YOLO "
                "labels; give one with --names"
            )
    if names_path is not None:
        if not names_path.is_file():
            if names_path.exists():  # a FIFO, a device, a folder: refused before it is opened
                check_regular(names_path, LABEL_LIMIT, what="names file")
            raise DataError(f"{names_path}: --names file not found; check the path")
        class_names = read_names(names_path)
        report.names_file = str(names_path)
    if fmt == "visdrone":
        class_names = list(VISDRONE_CLASSES) + (["others"] if others == "class" else [])

    files = _list_images(images_dir)
    if not files:
        raise DataError(f"{images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    label_of: dict[Path, Path] = {}
    for rel in files:
        label = (labels_dir / rel).with_suffix(suffix)
        if label in label_of:
            raise DataError(
                f"{images_dir / label_of[label]} and {images_dir / rel} share the label file "
                f"{label}; give each image its own name"
            )
        label_of[label] = rel
    for label in label_of:  # a FIFO or a device where a label file belongs: refused, never opened
        if label.exists() and not label.is_file():
            check_regular(label, LABEL_LIMIT, what="label file")
    if not any(label.is_file() for label in label_of):
        example = (labels_dir / files[0]).with_suffix(suffix)
        raise DataError(
            f"{labels_dir}: no label file matches any of the {len(files)} images (e.g. {example} "
            f"for {images_dir / files[0]}); check --labels"
        )
    skip = {names_path.resolve()} if names_path is not None else set()
    report.orphans = sorted(
        str(p) for p in labels_dir.rglob(f"*{suffix}")
        if p not in label_of and p.is_file() and not p.name.startswith(".")
        and p.name not in NAMES_FILES and p.resolve() not in skip
    )  # fmt: skip

    images_out: list[dict[str, Any]] = []
    per_image: list[list[Label]] = []
    # disable=None: a bar only on a terminal
    bar = tqdm(files, desc="convert", unit="img",
               disable=None if progress and len(files) >= PROGRESS_MIN else True)  # fmt: skip
    report.pixel_limit = Image.MAX_IMAGE_PIXELS
    with _large_images_allowed():
        for image_id, rel in enumerate(bar, start=1):
            width, height = image_size(images_dir / rel)
            if report.pixel_limit and width * height > report.pixel_limit:
                report.large.append(str(images_dir / rel))
            image = {"id": image_id, "file_name": rel.as_posix(), "width": width, "height": height}
            label_path = (labels_dir / rel).with_suffix(suffix)
            found: list[Label] = []
            if label_path.is_file():
                report.labelled += 1
                if fmt == "yolo":
                    found = read_yolo(label_path, width, height, class_names or [])
                elif fmt == "visdrone":
                    found, dropped = read_visdrone(label_path, others)
                    report.dropped_others += dropped
                elif fmt == "dota":
                    found = read_dota(label_path, image)
                else:
                    found, mismatch = read_voc(label_path, width, height)
                    if mismatch is not None:
                        report.size_mismatch.append(mismatch)
            images_out.append(image)
            per_image.append(found)

    if class_names is None:  # dota, voc without --names: the names found, sorted
        class_names = sorted({lab.category for labs in per_image for lab in labs
                              if isinstance(lab.category, str)})  # fmt: skip
    category_id = {name: i + 1 for i, name in enumerate(class_names)}
    all_ids = list(category_id.values())

    annotations: list[dict[str, Any]] = []
    for image, labs in zip(images_out, per_image, strict=True):
        for lab in labs:
            if lab.category is None:
                ids = all_ids
            elif isinstance(lab.category, int):
                ids = [lab.category + 1]
            else:
                if lab.category not in category_id:
                    raise DataError(
                        f"{lab.where}: class {lab.category!r} is not in {report.names_file} "
                        f"({len(class_names)} names); add it there or fix the label"
                    )
                ids = [category_id[lab.category]]
            bbox = _clip(lab.box, image["width"], image["height"], report)
            if bbox is None:
                continue
            ignore = lab.ignore or (difficult == "ignore" and bool(lab.extra.get("difficult")))
            report.ignore_regions += ignore
            for cat in ids:
                ann = {"id": len(annotations) + 1, "image_id": image["id"], "category_id": cat,
                       "bbox": bbox, "area": round(bbox[2] * bbox[3], 3),
                       "iscrowd": int(ignore), **lab.extra}  # fmt: skip
                if ignore:
                    ann["ignore"] = 1
                annotations.append(ann)

    data = {
        "info": {"description": f"converted from {fmt} labels by mrae convert"},
        "images": images_out,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in category_id.items()],
    }
    return data, report


def write_coco(data: dict[str, Any], out: str | Path) -> None:
    """Check ``data`` as the rest of the project will read it (:func:`mrae.data.validate.check_coco`)
    and write it as compact JSON (ASCII, so any locale writes it), atomically."""
    out = Path(out)
    check_coco(data, str(out), fix_boxes=False)
    try:
        write_text_atomic(out, json.dumps(data, separators=(",", ":")))
    except OSError as error:
        raise DataError(f"{out}: cannot write the file ({error.strerror})") from None


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image as displayed (EXIF orientation applied), from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: cannot read the image ({error})") from None
    if orientation in _QUARTER_TURNS:
        return height, width
    return width, height



def _clip(box: tuple[float, float, float, float], width: int, height: int,
          report: Report) -> list[float] | None:
    """``[x, y, w, h]`` of ``box`` (x1 y1 x2 y2) clipped to the image, 0.001 px; None: dropped."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        report.dropped_empty += 1
        return None
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    cx1, cy1, cx2, cy2 = (round(v, 3) for v in (cx1, cy1, cx2, cy2))
    if cx2 <= cx1 or cy2 <= cy1:
        report.dropped_outside += 1
        return None
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        report.clipped += 1
    w, h = round(cx2 - cx1, 3), round(cy2 - cy1, 3)
    while cx1 + w > width:  # float rounding must not put the box past the edge
        w = math.nextafter(w, 0.0)
    while cy1 + h > height:
        h = math.nextafter(h, 0.0)
    return [_plain(cx1), _plain(cy1), _plain(w), _plain(h)]



def _plain(value: float) -> float | int:
    """Whole numbers as ints, so the JSON reads ``[40, 15, 20, 20]``."""
    return int(value) if value.is_integer() else value


def _folder(path: str | Path, option: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: {option} folder not found; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder}: {option} is a file; give a folder")
    return folder


def _list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, no hidden ones), relative, sorted."""
    return sorted(
        p.relative_to(folder) for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )  # fmt: skip



@contextmanager
def _large_images_allowed() -> Iterator[None]:
    """Satellite images pass Pillow's decompression-bomb limit; only their headers are read here."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit
