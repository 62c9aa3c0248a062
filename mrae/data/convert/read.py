"""The conversion itself (:func:`convert`): options checked, class names found, the images listed
and each one's labels read with its format's reader (:data:`mrae.data.formats.FORMATS`), then
made COCO categories and annotations (:mod:`mrae.data.convert.annotations`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from mrae.data.class_map import ClassMap
from mrae.data.convert.annotations import DIFFICULT, build_annotations
from mrae.data.convert.files import (
    IMAGE_SUFFIXES,
    folder,
    image_size,
    label_files,
    large_images_allowed,
    list_images,
    select_images,
)
from mrae.data.convert.report import Report
from mrae.data.formats import FORMATS
from mrae.data.formats.common import Found, Label, ReadOptions, read_names
from mrae.data.formats.visdrone import VISDRONE_OTHERS
from mrae.data.formats.voc import VOC_BOXES
from mrae.data.formats.yolo import NAMES_FILES, find_names_file
from mrae.errors import ConfigError, DataError
from mrae.inputs import LABEL_LIMIT, check_regular

#: Show a progress bar (on a terminal) from this many images on.
PROGRESS_MIN = 200


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
    images_dir = folder(images, "--images")
    report = Report()
    if spec.suffix is None:  # one label file for the whole dataset
        if labels is None or not Path(labels).is_file():
            raise DataError(f"--format {fmt} needs --labels FILE, the dataset's one label file "
                            f"(got {labels}); check the path")
        labels_dir = Path(labels).parent
    else:
        labels_dir = images_dir if labels is None else folder(labels, "--labels")

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

    all_files = list_images(images_dir)
    if not all_files:
        raise DataError(f"{images_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    if spec.suffix is None:
        label_of = {rel: Path(labels) for rel in all_files}  # type: ignore[arg-type]
    else:
        label_of = label_files(images_dir, labels_dir, all_files, spec.suffix)
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
    with large_images_allowed():
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

    categories, annotations = build_annotations(images_out, per_image, class_names, classes,
                                                difficult, report)
    if not categories:
        raise ConfigError(f"{labels or images}: no category is left after --classes, --map and "
                          "--ignore-classes; keep at least one class")
    data = {
        "info": {"description": f"converted from {fmt} labels by mrae convert"},
        "images": images_out,
        "annotations": annotations,
        "categories": categories,
    }
    return data, report
