"""`mrae convert`: YOLO txt, VisDrone-DET, DOTA and Pascal VOC labels turned into a COCO JSON.

The images are listed from ``--images`` (recursively, sorted; ``file_name`` is the path relative
to that folder, so the output works as ``data.*_images`` / ``data.*_annotations`` of a config).
Each image's label file is ``--labels`` (default: the images folder) + the image's relative path
with the format's suffix (``.txt``, VOC ``.xml``); an image without one is an image with no
objects. Every image's size is read from its file header (Pillow, no decoding), EXIF orientation
applied as the project's loader does (:mod:`mrae.data.coco`); the labels' own sizes (VOC
``<size>``) are never trusted, only compared and reported. Boxes are clipped to the image; boxes
with no area (as written or after clipping) are dropped, counted in the report. The result is
checked with :func:`mrae.data.validate.check_coco` before it is written (atomically).

Per format (``category_id`` 1..C; ``iscrowd=1`` plus ``"ignore": 1`` marks an ignore region,
which COCOeval ignores and training leaves out, as ``mrae subset`` does with ``iscrowd``):

- ``yolo``: ``class cx cy w h`` normalised to 0..1 (or a segment ``class x1 y1 x2 y2 ...``: its
  bounding box); class ``k`` is category ``k + 1``, named by ``--names`` (``classes.txt`` /
  ``obj.names``: one per line; or a ``data.yaml`` with ``names:``), looked for beside the labels
  when not given.
- ``visdrone``: ``x,y,w,h,score,category,truncation,occlusion`` (DET). Categories 1..10 keep their
  VisDrone ids and names. Category 0 (ignored regions) becomes one ignore region *per category*
  (COCOeval matches crowd regions within a category only, and VisDrone ignores every class
  there); ``score 0`` marks an object as an ignore region of its own category. Category 11
  (others) follows ``--visdrone-others``: ``ignore`` (default: like category 0), ``drop``, or
  ``class`` (an 11th category). ``truncation`` and ``occlusion`` are kept as keys.
- ``dota``: ``x1 y1 ... x4 y4 class [difficult]`` after optional ``imagesource:``/``gsd:`` lines
  (kept on the image); the box is the bounding box of the polygon. Class names from ``--names``
  or sorted from the files.
- ``voc``: ``<object>`` with ``<name>``, ``<bndbox>`` and ``<difficult>``; 1-based inclusive
  pixel coordinates become ``[xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]``
  (detectron2's and supervision's convention). Class names as for DOTA.

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

import argparse
import json
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import yaml
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from mrae.data.validate import check_coco
from mrae.errors import ConfigError, DataError
from mrae.files import write_text_atomic

FORMATS = ("yolo", "visdrone", "dota", "voc")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABEL_SUFFIX = {"yolo": ".txt", "visdrone": ".txt", "dota": ".txt", "voc": ".xml"}
#: Class-names files looked for (in this order) beside the YOLO labels when --names is not given.
NAMES_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
#: VisDrone-DET categories 1..10; 0 is "ignored regions", 11 "others".
VISDRONE_CLASSES = ("pedestrian", "people", "bicycle", "car", "van", "truck", "tricycle",
                    "awning-tricycle", "bus", "motor")  # fmt: skip
VISDRONE_OTHERS = ("ignore", "drop", "class")
DIFFICULT = ("flag", "ignore")
#: Show a progress bar (on a terminal) from this many images on.
PROGRESS_MIN = 200
#: YOLO values above this are not normalised (pixels, most likely).
_YOLO_MAX = 1.01
# EXIF orientations 5..8 turn the picture a quarter turn: width and height swap.
_ORIENTATION = 0x0112
_QUARTER_TURNS = {5, 6, 7, 8}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="the label format")
    parser.add_argument("--images", required=True, metavar="DIR",
                        help="folder of the images (searched recursively)")
    parser.add_argument("--labels", metavar="DIR", default=None,
                        help="folder of the label files, laid out as the images "
                        "(default: the images folder)")
    parser.add_argument("--out", required=True, metavar="OUT.json", help="the COCO JSON to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (refused otherwise)")
    parser.add_argument("--names", metavar="FILE", default=None,
                        help="class names: one per line (classes.txt, obj.names) or a YAML with "
                        "'names:'. yolo: looked for beside the labels when not given; dota, voc: "
                        "fixes the categories' order (default: sorted names found)")
    parser.add_argument("--difficult", choices=DIFFICULT, default=None,
                        help="dota, voc: 'flag' keeps difficult objects as objects with "
                        "\"difficult\": 1 (default); 'ignore' makes them ignore regions")
    parser.add_argument("--visdrone-others", choices=VISDRONE_OTHERS, default=None,
                        help="visdrone: category 11 (others) as ignore regions (default), "
                        "dropped, or an 11th category")


def main(args: argparse.Namespace) -> int:
    if args.difficult is not None and args.format not in ("dota", "voc"):
        raise ConfigError(f"--difficult applies to dota and voc labels, not {args.format}")
    if args.visdrone_others is not None and args.format != "visdrone":
        raise ConfigError(f"--visdrone-others applies to visdrone labels, not {args.format}")
    if args.names is not None and args.format == "visdrone":
        raise ConfigError("--names does not apply to visdrone: its 10 class names are fixed")
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .json file path")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite to replace it or choose "
                          "another --out")
    folder = next(p for p in out.absolute().parents if p.exists())  # before the long work
    if not folder.is_dir():
        raise ConfigError(f"--out {out}: {folder} is a file, not a folder")
    data, report = convert(
        args.format, args.images, args.labels, names=args.names,
        difficult=args.difficult or "flag", others=args.visdrone_others or "ignore",
        progress=True,
    )  # fmt: skip
    check_coco(data, str(out), fix_boxes=False)  # what the rest of the project will read
    _write(data, out)
    for line in report.warnings():
        print(f"mrae convert: warning: {line}", file=sys.stderr)
    print(report.summary(data))
    print(f"wrote {out}")
    return 0


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


@dataclass
class _Label:
    """One box of a label file: ``category`` a name or a 0-based index, ``box`` x1 y1 x2 y2 px."""

    category: str | int | None  # None: an ignore region of every category
    box: tuple[float, float, float, float]
    where: str  # "file line N", for error messages
    ignore: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


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
        names_path = _find_names_file(labels_dir)
        if names_path is None:
            raise DataError(
                f"{labels_dir}: no class-names file ({', '.join(NAMES_FILES)}) beside the YOLO "
                "labels; give one with --names"
            )
    if names_path is not None:
        if not names_path.is_file():
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
    per_image: list[list[_Label]] = []
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
            found: list[_Label] = []
            if label_path.is_file():
                report.labelled += 1
                if fmt == "yolo":
                    found = _read_yolo(label_path, width, height, class_names or [])
                elif fmt == "visdrone":
                    found = _read_visdrone(label_path, others, report)
                elif fmt == "dota":
                    found = _read_dota(label_path, image)
                else:
                    found = _read_voc(label_path, width, height, report)
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


def read_names(path: str | Path) -> list[str]:
    """Class names from a text file (one per line) or a YAML file with ``names:`` (list or dict)."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise DataError(f"{path}{where}: malformed YAML ({getattr(error, 'problem', error)})"
                            ) from None
        raw = loaded.get("names") if isinstance(loaded, dict) else None
        if isinstance(raw, dict):
            keys = sorted(raw, key=str)
            if set(raw) != set(range(len(raw))):
                raise DataError(f"{path}: 'names' keys must be the class indices 0..{len(raw) - 1}, "
                                f"found {keys}")
            raw = [raw[i] for i in range(len(raw))]
        if not isinstance(raw, list) or not raw:
            raise DataError(f"{path}: needs 'names:', a list of class names (or a dict "
                            "index: name)")
        names = [str(n) for n in raw]
    else:
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        names = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise DataError(f"{path} line {number}: empty; give one class name per line")
            names.append(line.strip())
        if not names:
            raise DataError(f"{path}: no class names; give one per line")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: class name {name!r} appears twice")
        seen.add(name)
    return names


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


# --- the formats ----------------------------------------------------------------------------


def _read_yolo(path: Path, width: int, height: int, names: list[str]) -> list[_Label]:
    found = []
    for number, line in _lines(path):
        where = f"{path} line {number}"
        fields = line.split()
        if len(fields) != 5 and (len(fields) < 7 or len(fields) % 2 == 0):
            raise DataError(f"{where}: expected 'class cx cy w h' (or a segment 'class x1 y1 x2 y2 "
                            f"x3 y3 ...'), found {_values(len(fields))}")
        cls = _number(fields[0], where, "class")
        values = [_number(v, where, "coordinate") for v in fields[1:]]
        if not cls.is_integer() or not 0 <= cls < len(names):
            raise DataError(f"{where}: class {fields[0]} is not an index 0..{len(names) - 1} of the "
                            f"{len(names)} class names")
        if max(abs(v) for v in values) > _YOLO_MAX:
            raise DataError(f"{where}: coordinates must be normalised to 0..1 by the image size "
                            f"({width} x {height}), found {max(values, key=abs):g}")
        if len(fields) == 5:
            cx, cy, w, h = values
            box = ((cx - w / 2) * width, (cy - h / 2) * height,
                   (cx + w / 2) * width, (cy + h / 2) * height)  # fmt: skip
        else:
            xs, ys = values[0::2], values[1::2]
            box = (min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height)
        found.append(_Label(int(cls), box, where))
    return found


def _read_visdrone(path: Path, others: str, report: Report) -> list[_Label]:
    found = []
    for number, line in _lines(path):
        where = f"{path} line {number}"
        fields = [f.strip() for f in line.rstrip(",").split(",")]
        if len(fields) != 8:
            raise DataError(f"{where}: expected 8 comma-separated values 'x,y,w,h,score,category,"
                            f"truncation,occlusion', found {_values(len(fields))}")
        x, y, w, h = (_number(v, where, "box value") for v in fields[:4])
        score, category, truncation, occlusion = (_integer(v, where, name) for v, name in zip(
            fields[4:], ("score", "category", "truncation", "occlusion"), strict=True))
        if not 0 <= category <= 11:
            raise DataError(f"{where}: category {category} is not a VisDrone-DET category 0..11")
        extra = {"truncation": truncation, "occlusion": occlusion}
        box = (x, y, x + w, y + h)
        if category == 0:  # ignored region: every class
            found.append(_Label(None, box, where, ignore=True, extra=extra))
        elif category == 11 and others == "drop":
            report.dropped_others += 1
        elif category == 11 and others == "ignore":
            found.append(_Label(None, box, where, ignore=True, extra=extra))
        else:
            found.append(_Label(category - 1, box, where, ignore=score == 0, extra=extra))
    return found


def _read_dota(path: Path, image: dict[str, Any]) -> list[_Label]:
    found = []
    for number, line in _lines(path):
        where = f"{path} line {number}"
        key, _, value = line.partition(":")
        if key.strip().lower() in ("imagesource", "gsd") and not found:
            value = value.strip()
            if key.strip().lower() == "gsd":
                try:
                    image["gsd"] = None if value.lower() in ("", "null", "none") else float(value)
                except ValueError:
                    raise DataError(f"{where}: gsd {value!r} is not a number") from None
            else:
                image["imagesource"] = value
            continue
        fields = line.split()
        if len(fields) not in (9, 10):
            raise DataError(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult', found "
                            f"{_values(len(fields))}")
        coords = [_number(v, where, "coordinate") for v in fields[:8]]
        difficult = _integer(fields[9], where, "difficult") if len(fields) == 10 else 0
        xs, ys = coords[0::2], coords[1::2]
        found.append(_Label(fields[8], (min(xs), min(ys), max(xs), max(ys)), where,
                            extra={"difficult": int(difficult != 0)}))
    return found


def _read_voc(path: Path, width: int, height: int, report: Report) -> list[_Label]:
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise DataError(f"{path} line {root.line}: the root element is <{root.tag}>, not "
                        "<annotation>; give Pascal VOC XML")
    size = root.child("size")
    if size is not None:
        stated = (size.text_of("width"), size.text_of("height"))
        if stated != (str(width), str(height)):
            report.size_mismatch.append(
                f"{path} says {stated[0]} x {stated[1]}, the image is {width} x {height}"
            )
    found = []
    for obj in root.children("object"):
        where = f"{path} line {obj.line}"
        name = obj.text_of("name")
        if not name:
            raise DataError(f"{where}: <object> has no <name>")
        box = obj.child("bndbox")
        if box is None:
            raise DataError(f"{where}: <object> {name!r} has no <bndbox>")
        xmin, ymin, xmax, ymax = (
            _number(box.text_of(k) or "", f"{path} line {box.line}", f"<{k}>")
            for k in ("xmin", "ymin", "xmax", "ymax")
        )
        difficult_text = obj.text_of("difficult") or "0"
        difficult = _number(difficult_text, where, "<difficult>")
        found.append(_Label(name, (xmin - 1, ymin - 1, xmax, ymax), where,
                            extra={"difficult": int(difficult != 0)}))
    return found


# --- helpers --------------------------------------------------------------------------------


@dataclass
class _Node:
    """An XML element with the line it starts on (ElementTree keeps no line numbers)."""

    tag: str
    line: int
    text: str = ""
    kids: list[_Node] = field(default_factory=list)

    def child(self, tag: str) -> _Node | None:
        return next((k for k in self.kids if k.tag == tag), None)

    def children(self, tag: str) -> Iterator[_Node]:
        return (k for k in self.kids if k.tag == tag)

    def text_of(self, tag: str) -> str | None:
        node = self.child(tag)
        return None if node is None else node.text.strip()


def _parse_xml(path: Path) -> _Node:
    parser = expat.ParserCreate()
    stack: list[_Node] = []
    roots: list[_Node] = []

    def start(tag: str, _attrs: dict[str, str]) -> None:
        node = _Node(tag, parser.CurrentLineNumber)
        (stack[-1].kids if stack else roots).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as error:
        raise DataError(f"{path} line {error.lineno}: malformed XML "
                        f"({expat.ErrorString(error.code)})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None
    return roots[0]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered non-empty lines of a label file, stripped."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, line


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: not UTF-8 text") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {what} {text!r} is not a finite number")
    return value


def _integer(text: str, where: str, what: str) -> int:
    value = _number(text, where, what)
    if not value.is_integer():
        raise DataError(f"{where}: {what} {text!r} is not an integer")
    return int(value)


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


def _values(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


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


def _find_names_file(labels_dir: Path) -> Path | None:
    for folder in (labels_dir, labels_dir.parent):
        for name in NAMES_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


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


def _write(data: dict[str, Any], out: Path) -> None:
    """Compact JSON (ASCII, so any locale writes it), atomically: a temporary file, then a move."""
    try:
        write_text_atomic(out, json.dumps(data, separators=(",", ":")))
    except OSError as error:
        raise DataError(f"{out}: cannot write the file ({error.strerror})") from None
