"""Load a COCO instances JSON and check it, with one-line errors that say what to fix.

``load_coco_json(path)`` is what every data module calls. It checks the structure (the top-level
keys and their types), the ids (integers, unique per kind), the references (each annotation's image
and category exist) and the boxes: a box that extends outside its image is clipped to it, a box
with zero or negative size (also after clipping) is dropped, and both are counted and reported in
one warning line. Everything else that is wrong raises :class:`mrae.errors.DataError`.

``check_image_files(paths)`` checks, before a training run creates its folder, that every image
file the annotations name exists: one stat per image, so 100k images take about a second.

Only the standard library and the error classes are imported: ``mrae subset`` runs this on
COCO-train (860k annotations) without paying for torch.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import orjson

from mrae.errors import DataError
from mrae.inputs import JSON_LIMIT, check_regular

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("images", "annotations", "categories")

# How many offending annotation ids a warning line names.
_EXAMPLES = 5


@dataclass
class BoxReport:
    """What :func:`check_coco` changed: counts of boxes clipped and dropped."""

    clipped: int = 0  # extended outside the image, now clipped to it
    dropped_empty: int = 0  # zero or negative width or height as written
    dropped_outside: int = 0  # no area left inside the image after clipping
    examples: list[int] = field(default_factory=list)  # the first few annotation ids changed

    @property
    def dropped(self) -> int:
        return self.dropped_empty + self.dropped_outside

    def summary(self) -> str:
        """One line such as ``"clipped 2 boxes to their image; dropped 1 box ..."``, or ``""``."""
        parts = []
        if self.clipped:
            parts.append(f"clipped {_boxes(self.clipped)} that extended outside their image")
        if self.dropped_empty:
            parts.append(f"dropped {_boxes(self.dropped_empty)} with zero or negative width/height")
        if self.dropped_outside:
            parts.append(f"dropped {_boxes(self.dropped_outside)} lying outside their image")
        if not parts:
            return ""
        ids = ", ".join(str(i) for i in self.examples)
        more = ", ..." if self.clipped + self.dropped > len(self.examples) else ""
        return "; ".join(parts) + f" (annotation ids {ids}{more})"


def _boxes(n: int) -> str:
    return f"{n} box" if n == 1 else f"{n} boxes"


def read_json(path: str | PathLike[str], *, fast: bool = False) -> Any:
    """Parse a JSON file; an unreadable file or malformed JSON raises a one-line DataError.

    ``fast`` parses with orjson: about twice as fast, but on COCO-train with its polygons it peaks
    about 1.3 GB higher than the standard parser, so only readers that keep little use it.
    """
    check_regular(path, JSON_LIMIT, what="annotation file")  # no FIFO, device or folder is opened
    try:
        if fast:
            with open(path, "rb") as f:
                raw = f.read()
            try:
                with gc_paused():
                    return orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
            except orjson.JSONDecodeError:
                del raw  # the standard parser names the same error (or reads NaN / Infinity,
                # which the COCO check then refuses with the message every command gives)
        with open(path, encoding="utf-8-sig") as f, gc_paused():  # a BOM is fine
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; give the path of a COCO JSON file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; give a COCO JSON file") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a COCO file; give a COCO JSON file") from None
    except json.JSONDecodeError as error:  # orjson's error is a subclass
        if "UTF-8" in error.msg:
            raise DataError(f"{path}: not UTF-8 text; give a COCO JSON file") from None
        raise DataError(
            f"{path}: malformed JSON at line {error.lineno} column {error.colno}: {error.msg}; "
            "is the file complete?"
        ) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from None


def check_image_files(data_paths: Mapping[str, str | PathLike[str] | None]) -> None:
    """Check that every image file named by the annotations exists; raise DataError if not.

    Args:
        data_paths: ``{"<split>_images": folder, "<split>_annotations": COCO JSON}`` pairs, e.g.
            ``train`` and ``val`` (what :func:`mrae.engine.config.resolve_data` returns); a pair
            with a None is skipped.

    Raises:
        DataError: one line naming the split's JSON, the images folder, how many of its images
            are missing, and the first few of them; or the JSON cannot be read.

    Only ``images[*].file_name`` is read (the rest of the file is checked when the dataset is
    built); the cost is one JSON parse and one ``os.path.isfile`` per image.
    """
    for key, ann_file in data_paths.items():
        if not key.endswith("_annotations") or ann_file is None:
            continue
        split = key[: -len("_annotations")]
        folder = data_paths.get(f"{split}_images")
        if folder is None:
            continue
        data = read_json(ann_file, fast=True)
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, list):
            continue  # not a COCO file: the full check when the dataset is built says so
        names = [i["file_name"] for i in images if isinstance(i, dict) and isinstance(i.get("file_name"), str)]
        missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
        if missing:
            shown = ", ".join(missing[:_EXAMPLES]) + (", ..." if len(missing) > _EXAMPLES else "")
            raise DataError(
                f"{ann_file}: {len(missing)} of its {len(names)} image files are missing from "
                f"{folder} ({shown}); check data.{split}_images and the 'file_name' entries"
            )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector.

    Parsing a large JSON creates millions of lists and dicts, each of which counts towards the
    collector's next full pass over all of them: on COCO-train that doubles the parse time. JSON
    values hold no reference cycles, so pausing it frees nothing that would otherwise be freed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_coco_json(path: str | PathLike[str], *, fix_boxes: bool = True) -> dict[str, Any]:
    """Read a COCO instances JSON, check it and return it as a dict.

    Args:
        path: the JSON file.
        fix_boxes: clip boxes to their image and drop empty ones (counted, one warning line).
            With False, such boxes raise DataError instead.

    Returns:
        The parsed dict, with every annotation's ``bbox`` (xywh, pixels) inside its image,
        ``iscrowd`` (0 or 1; 1 wherever ``"ignore": 1`` marks an ignore region, so that COCOeval,
        which reads only ``iscrowd``, ignores it) and ``area`` (px^2; w * h where the file has
        none) set.

    Raises:
        DataError: the file cannot be read or parsed, or is not a valid COCO instances file.
    """
    data = read_json(path)
    report = check_coco(data, str(path), fix_boxes=fix_boxes)
    message = report.summary()
    if message:
        log.warning("%s: %s", path, message)
    return data


def check_coco(data: Any, source: str, *, fix_boxes: bool = True) -> BoxReport:
    """Check a parsed COCO instances dict in place; see :func:`load_coco_json`.

    ``source`` names the file in error messages. Boxes are clipped and dropped in ``data`` itself.
    """
    if not isinstance(data, dict):
        raise DataError(
            f"{source}: the top level is a JSON {_json_type(data)}, not an object with "
            f"{_quoted(REQUIRED_KEYS)}; give a COCO instances file"
        )
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise DataError(
            f"{source}: missing top-level key(s) {_quoted(missing)}; a COCO instances file has "
            f"{_quoted(REQUIRED_KEYS)}"
        )
    for key in REQUIRED_KEYS:
        if not isinstance(data[key], list):
            raise DataError(
                f"{source}: '{key}' must be a list, found a JSON {_json_type(data[key])}"
            )
    sizes = _check_images(data["images"], source)
    category_ids = _check_categories(data["categories"], source)
    return _check_annotations(data, sizes, category_ids, source, fix_boxes)


def _check_images(images: list, source: str) -> dict[int, tuple[float, float]]:
    sizes: dict[int, tuple[float, float]] = {}
    for i, image in enumerate(images):
        if not isinstance(image, dict):
            raise DataError(f"{source}: images[{i}] is a JSON {_json_type(image)}, not an object")
        image_id = image.get("id")
        if not _is_int(image_id):
            raise DataError(f"{source}: images[{i}] has no integer 'id' (found {image_id!r})")
        if image_id in sizes:
            raise DataError(
                f"{source}: image id {image_id} appears twice in 'images'; ids must be unique"
            )
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DataError(f"{source}: image id {image_id} has no 'file_name'")
        width, height = image.get("width"), image.get("height")
        if not (is_json_number(width) and is_json_number(height) and 0 < width < math.inf
                and 0 < height < math.inf):
            raise DataError(
                f"{source}: image id {image_id} ({file_name[:80]}) needs a positive 'width' and "
                f"'height' in pixels, finite numbers (found {str(width)[:20]} x {str(height)[:20]})"
            )
        sizes[image_id] = (width, height)
    return sizes


def _check_categories(categories: list, source: str) -> set[int]:
    ids: set[int] = set()
    for i, category in enumerate(categories):
        if not isinstance(category, dict):
            raise DataError(
                f"{source}: categories[{i}] is a JSON {_json_type(category)}, not an object"
            )
        category_id = category.get("id")
        if not _is_int(category_id):
            raise DataError(
                f"{source}: categories[{i}] has no integer 'id' (found {category_id!r})"
            )
        if category_id in ids:
            raise DataError(f"{source}: category id {category_id} appears twice in 'categories'")
        if not isinstance(category.get("name"), str):
            raise DataError(f"{source}: category id {category_id} has no 'name'")
        ids.add(category_id)
    return ids


def _check_annotations(
    data: dict,
    sizes: dict[int, tuple[float, float]],
    category_ids: set[int],
    source: str,
    fix: bool,
) -> BoxReport:
    # The hot loop of `mrae subset` on COCO-train (860k annotations): checks are inlined.
    report = BoxReport()
    seen: set[int] = set()
    kept = []
    isfinite = math.isfinite
    for i, ann in enumerate(data["annotations"]):
        if type(ann) is not dict:
            raise DataError(
                f"{source}: annotations[{i}] is a JSON {_json_type(ann)}, not an object"
            )
        ann_id = ann.get("id")
        if type(ann_id) is not int:
            raise DataError(f"{source}: annotations[{i}] has no integer 'id' (found {ann_id!r})")
        if ann_id in seen:
            raise DataError(f"{source}: annotation id {ann_id} appears twice; ids must be unique")
        seen.add(ann_id)
        image_id = ann.get("image_id")
        size = sizes.get(image_id) if type(image_id) is int else None
        if size is None:
            raise DataError(
                f"{source}: annotation id {ann_id} refers to image id {image_id!r}, which is not in "
                "'images'; fix or remove the annotation"
            )
        category_id = ann.get("category_id")
        if type(category_id) is not int or category_id not in category_ids:
            raise DataError(
                f"{source}: annotation id {ann_id} refers to category id {category_id!r}, which is "
                "not in 'categories'; fix or remove the annotation"
            )
        crowd = ann.get("iscrowd")
        if crowd is None or type(crowd) is bool:
            crowd = ann["iscrowd"] = int(crowd or 0)
        if crowd != 0 and crowd != 1:
            raise DataError(f"{source}: annotation id {ann_id} has 'iscrowd' {crowd!r}; use 0 or 1")
        ignore = ann.get("ignore", 0)
        if type(ignore) not in (int, bool) or ignore not in (0, 1):
            raise DataError(f"{source}: annotation id {ann_id} has 'ignore' {ignore!r}; use 0 or 1")
        if ignore:  # an ignore region (mrae subset, mrae convert): a crowd to COCOeval and training
            ann["iscrowd"] = 1
        bbox = ann.get("bbox")
        if type(bbox) is not list or len(bbox) != 4 or not _all_numbers(bbox):
            raise DataError(
                f"{source}: annotation id {ann_id} has 'bbox' {bbox!r}; it must be [x, y, width, "
                "height] with 4 finite numbers in pixels"
            )
        x, y, w, h = bbox
        if not isfinite(x + y + w + h):  # NaN and inf propagate through the sum
            raise DataError(
                f"{source}: annotation id {ann_id} has 'bbox' {bbox!r}; it must be [x, y, width, "
                "height] with 4 finite numbers in pixels"
            )
        if w <= 0 or h <= 0:
            if not fix:
                raise DataError(f"{source}: annotation id {ann_id} has a box of size {w} x {h}")
            report.dropped_empty += 1
            _example(report, ann_id)
            continue
        width, height = size
        if x < 0 or y < 0 or x + w > width or y + h > height:
            if not fix:
                raise DataError(
                    f"{source}: annotation id {ann_id} has a box {bbox} outside its image "
                    f"({width} x {height})"
                )
            x1, y1 = max(x, 0), max(y, 0)
            x2, y2 = min(x + w, width), min(y + h, height)
            if x2 <= x1 or y2 <= y1:
                report.dropped_outside += 1
                _example(report, ann_id)
                continue
            report.clipped += 1
            _example(report, ann_id)
            ann["bbox"] = bbox = [x1, y1, x2 - x1, y2 - y1]
        area = ann.get("area")
        if area is None:
            ann["area"] = bbox[2] * bbox[3]
        elif (type(area) is not float and type(area) is not int) or not 0 <= area < math.inf:
            raise DataError(
                f"{source}: annotation id {ann_id} has 'area' {str(area)[:40]}; it must be a finite "
                "number >= 0 (px^2), or left out"
            )
        kept.append(ann)
    if report.dropped:
        data["annotations"] = kept
    return report


def _all_numbers(values: list) -> bool:
    for v in values:
        if type(v) is not float and type(v) is not int:
            return False
    return True


def _example(report: BoxReport, ann_id: int) -> None:
    if len(report.examples) < _EXAMPLES:
        report.examples.append(ann_id)


def _is_int(value: Any) -> bool:
    return type(value) is int


def is_json_number(value: Any) -> bool:
    """A JSON number as parsed: an int or a float, never true/false (Python's bool is an int)."""
    return type(value) is int or type(value) is float


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return names.get(type(value), type(value).__name__)


def _quoted(keys: Any) -> str:
    return ", ".join(f"'{key}'" for key in keys)
