"""The files of a conversion: the images under ``--images``, each one's label file, the images a
``--list`` names, and each image's size read from its header."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mrae.data.formats.common import numbered_lines
from mrae.errors import DataError
from mrae.inputs import LABEL_LIMIT, check_regular

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# EXIF orientations 5..8 turn the picture a quarter turn: width and height swap.
_ORIENTATION = 0x0112
_QUARTER_TURNS = {5, 6, 7, 8}


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


def label_files(images_dir: Path, labels_dir: Path, files: list[Path],
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


def folder(path: str | Path, option: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: {option} folder not found; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder}: {option} is a file; give a folder")
    return folder


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, no hidden ones), relative, sorted."""
    return sorted(
        p.relative_to(folder) for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )  # fmt: skip


@contextmanager
def large_images_allowed() -> Iterator[None]:
    """Satellite images pass Pillow's decompression-bomb limit; only their headers are read here."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit
