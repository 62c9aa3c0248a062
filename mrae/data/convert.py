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

Each format has its reader in the one table :data:`mrae.data.formats.FORMATS` (each reader's
docstring gives the format's rules; one signature, no fallback): ``category_id`` 1..C; ``iscrowd=1`` plus ``"ignore": 1`` marks an ignore region, which COCOeval
ignores and training leaves out, as ``mrae subset`` does with ``iscrowd``. Class names: YOLO's from
a names file, VisDrone's fixed, DOTA's and VOC's from ``--names`` or sorted from the files.

DOTA and VOC ``difficult`` objects keep a ``"difficult": 1`` key and stay objects (iscrowd 0) by
default; ``--difficult ignore`` makes them ignore regions, as the DOTA and VOC metrics treat them.
``--classes``, ``--map`` and ``--ignore-classes`` keep, merge or ignore classes
(:mod:`mrae.data.class_map`); ``--list`` (VOC's ``ImageSets/Main/train.txt``) converts only the
images it names.

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

from mrae.data.class_map import ClassMap
from mrae.data.formats import FORMATS
from mrae.data.formats.common import Found, Label, ReadOptions, numbered_lines, read_names
from mrae.data.formats.visdrone import VISDRONE_OTHERS
from mrae.data.formats.voc import VOC_BOXES
from mrae.data.formats.yolo import NAMES_FILES, find_names_file
from mrae.data.validate import check_coco
from mrae.errors import ConfigError, DataError
from mrae.files import write_text_atomic
from mrae.inputs import LABEL_LIMIT, check_regular

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
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
    dropped_classes: int = 0  # boxes of a class that --classes leaves out
    suspicious: list[str] = field(default_factory=list)  # boxes the --voc-boxes convention cannot have
    ignore_regions: int = 0  # ignore regions kept (one annotation each, or one per category)
    names_file: str | None = None
    size_mismatch: list[str] = field(default_factory=list)  # VOC <size> != the image file's
    orphans: list[str] = field(default_factory=list)  # label files without an image
    large: list[str] = field(default_factory=list)  # images above Pillow's pixel limit
    pixel_limit: int | None = None  # that limit (PIL.Image.MAX_IMAGE_PIXELS) when converted

    def add(self, found: Found) -> None:
        """Count what a reader found for one image."""
        self.dropped_others += found.dropped
        if found.size_mismatch is not None:
            self.size_mismatch.append(found.size_mismatch)
        if found.suspicious is not None:
            self.suspicious.append(found.suspicious)

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
        if self.dropped_classes:
            changed.append(f"dropped {self.dropped_classes:,} boxes of classes left out by --classes")
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
        if self.suspicious:
            lines.append(
                f"{len(self.suspicious):,} VOC files have a box starting at 0 (e.g. "
                f"{self.suspicious[0]}), which 1-based pixel indices cannot have; if the labels are "
                "0-based corners, convert again with --voc-boxes corners (docs/hituav.md)"
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
    voc_boxes: str = "pixels",
    classes: ClassMap | None = None,
    image_list: str | Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Report]:
    """Read a folder of images and their labels in ``fmt``; return the COCO dict and the report.

    See the module docstring for the rules of each format; ``classes`` keeps, merges or ignores
    classes (:mod:`mrae.data.class_map`); ``image_list`` converts only the images it lists. Raises
    DataError (naming the file, and the line where there is one) on a missing folder, an
    unreadable image or a malformed label, ConfigError on a bad option.
    """
    spec = FORMATS.get(fmt)
    if spec is None:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if difficult not in DIFFICULT:
        raise ConfigError(f"unknown --difficult {difficult!r}; choose one of {', '.join(DIFFICULT)}")
    if others not in VISDRONE_OTHERS:
        raise ConfigError(f"unknown --visdrone-others {others!r}; choose one of "
                          f"{', '.join(VISDRONE_OTHERS)}")
    if voc_boxes not in VOC_BOXES:
        raise ConfigError(f"unknown --voc-boxes {voc_boxes!r}; choose one of {', '.join(VOC_BOXES)}")
    classes = classes or ClassMap()
    if image_list is not None and not Path(image_list).is_file():
        raise DataError(f"{image_list}: --list file not found; check the path")
    images_dir = _folder(images, "--images")
    report = Report()
    if spec.suffix is None:  # one label file for the whole dataset
        if labels is None or not Path(labels).is_file():
            raise DataError(f"--format {fmt} needs --labels FILE, the dataset's one label file "
                            f"(got {labels}); check the path")
        labels_dir = Path(labels).parent
    else:
        labels_dir = images_dir if labels is None else _folder(labels, "--labels")

    class_names: list[str] | None = None
    names_path = Path(names) if names is not None else None
    if spec.needs_names and names_path is None:
        names_path = find_names_file(labels_dir)
        if names_path is None:
            raise DataError(
                f"{labels_dir}: no class-names file ({', '.join(NAMES_FILES)}) beside the "
                f"{fmt} labels; give one with --names"
            )
    if names_path is not None:
        if not names_path.is_file():
            if names_path.exists():  # a FIFO, a device, a folder: refused before it is opened
                check_regular(names_path, LABEL_LIMIT, what="names file")
            raise DataError(f"{names_path}: --names file not found; check the path")
        class_names = read_names(names_path)
        report.names_file = str(names_path)
    options = ReadOptions(names=tuple(class_names or ()), visdrone_others=others,
                          voc_boxes=voc_boxes)  # fmt: skip
    if spec.fixed_names is not None:
        class_names = spec.fixed_names(options)

    all_files = _list_images(images_dir)
    if not all_files:
        raise DataError(f"{images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    if spec.suffix is None:
        label_of = {rel: Path(labels) for rel in all_files}  # type: ignore[arg-type]
    else:
        label_of = _label_files(images_dir, labels_dir, all_files, spec.suffix)
        skip = {names_path.resolve()} if names_path is not None else set()
        used = set(label_of.values())
        report.orphans = sorted(
            str(p) for p in labels_dir.rglob(f"*{spec.suffix}")
            if p not in used and p.is_file() and not p.name.startswith(".")
            and p.name not in NAMES_FILES and p.resolve() not in skip
        )  # fmt: skip
    files = all_files if image_list is None else select_images(all_files, image_list, images_dir)

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
            found = Found()
            if label_of[rel].is_file():
                report.labelled += 1
                found = spec.read(label_of[rel], image, options)
                report.add(found)
            images_out.append(image)
            per_image.append(found.labels)

    if class_names is None:  # dota, voc without --names: the names found, sorted
        class_names = sorted({lab.category for labs in per_image for lab in labs
                              if isinstance(lab.category, str)})  # fmt: skip
    category_id = {name: i + 1 for i, name in enumerate(classes.categories(class_names))}
    all_ids = list(category_id.values())

    annotations: list[dict[str, Any]] = []
    for image, labs in zip(images_out, per_image, strict=True):
        for lab in labs:
            name = _class_name(lab, class_names, report)
            ignore = lab.ignore or (difficult == "ignore" and bool(lab.extra.get("difficult")))
            if name is None or classes.is_ignored(name):
                ids, ignore = all_ids, True
            else:
                target = classes.target(name)
                if target is None:
                    report.dropped_classes += 1
                    continue
                ids = [category_id[target]]
            bbox = _clip(lab.box, image["width"], image["height"], report)
            if bbox is None or not ids:
                continue
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


def select_images(files: list[Path], image_list: str | Path, images_dir: Path) -> list[Path]:
    """The images of ``files`` named in ``image_list`` (one per line: the path relative to
    ``--images``, with or without its suffix, as VOC's ``ImageSets/Main/train.txt``), in the
    list's order; DataError naming the line of a name with no image."""
    path = Path(image_list)
    if not path.is_file():
        raise DataError(f"{path}: --list file not found; check the path")
    by_name: dict[str, Path] = {}
    for rel in files:
        by_name.setdefault(rel.as_posix(), rel)
        by_name.setdefault(rel.with_suffix("").as_posix(), rel)
    chosen: list[Path] = []
    seen: set[Path] = set()
    for number, line in numbered_lines(path):
        name = line.split()[0]
        rel = by_name.get(name)
        if rel is None:
            raise DataError(f"{path} line {number}: no image {name!r} under {images_dir}; check "
                            "--images and the list")
        if rel not in seen:
            seen.add(rel)
            chosen.append(rel)
    if not chosen:
        raise DataError(f"{path}: the --list file names no image")
    return chosen


def _label_files(images_dir: Path, labels_dir: Path, files: list[Path],
                 suffix: str) -> dict[Path, Path]:
    """Each image's label file; DataError when two images share one or none has one."""
    label_of: dict[Path, Path] = {}
    image_of: dict[Path, Path] = {}
    for rel in files:
        label = (labels_dir / rel).with_suffix(suffix)
        if label in image_of:
            raise DataError(
                f"{images_dir / image_of[label]} and {images_dir / rel} share the label file "
                f"{label}; give each image its own name"
            )
        image_of[label] = rel
        label_of[rel] = label
    for label in image_of:  # a FIFO or a device where a label file belongs: refused, never opened
        if label.exists() and not label.is_file():
            check_regular(label, LABEL_LIMIT, what="label file")
    if not any(label.is_file() for label in image_of):
        example = label_of[files[0]]
        raise DataError(
            f"{labels_dir}: no label file matches any of the {len(files)} images (e.g. {example} "
            f"for {images_dir / files[0]}); check --labels"
        )
    return label_of


def _class_name(lab: Label, class_names: list[str], report: Report) -> str | None:
    """The class name of a label (an index looked up in ``class_names``); None: every class."""
    if lab.category is None or isinstance(lab.category, str):
        if isinstance(lab.category, str) and lab.category not in class_names:
            raise DataError(
                f"{lab.where}: class {lab.category!r} is not in {report.names_file} "
                f"({len(class_names)} names); add it there or fix the label"
            )
        return lab.category
    return class_names[lab.category]


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
    x1, y1, x2, y2 = (float(v) for v in box)
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
