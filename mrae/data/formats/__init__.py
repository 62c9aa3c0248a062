"""Readers of the label formats that `mrae convert` (:mod:`mrae.data.convert`) turns into COCO JSON.

One module per format, each a reader with the one signature of
:data:`~mrae.data.formats.common.Reader` (``read(label_path, image, options) -> Found``), from the
labels of one image to :class:`~mrae.data.formats.common.Label` objects (category, box in pixels,
ignore flag, extra keys):

- :mod:`~mrae.data.formats.yolo`: YOLO txt (normalised ``class cx cy w h`` or segments);
- :mod:`~mrae.data.formats.visdrone`: VisDrone-DET (ignored regions, "others");
- :mod:`~mrae.data.formats.dota`: DOTA (polygons, difficult flags, imagesource/gsd);
- :mod:`~mrae.data.formats.voc`: Pascal VOC XML (1-based pixels or 0-based corners);
- :mod:`~mrae.data.formats.common`: the label, the reader's types, class-names files, text and
  number parsing.

:data:`FORMATS` is the one table of them: a format is its reader, where its labels are, and where
its class names come from. A format with one label file per dataset (CVAT XML, a COCO-like JSON)
has ``suffix=None``: ``--labels`` is that file, and its reader gets it for every image and returns
that image's part (parsing it once, e.g. with :func:`functools.lru_cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mrae.data.formats.common import Reader, ReadOptions
from mrae.data.formats.dota import read_dota
from mrae.data.formats.visdrone import VISDRONE_CLASSES, read_visdrone
from mrae.data.formats.voc import read_voc
from mrae.data.formats.yolo import read_yolo


@dataclass(frozen=True)
class Format:
    """One label format: its reader and where its labels and class names are."""

    read: Reader
    #: The label file of image ``a/b.jpg`` is ``<labels>/a/b<suffix>``; None: one label file for
    #: the whole dataset (``--labels FILE``), given to ``read`` for every image.
    suffix: str | None
    #: Class names by index: the labels hold indices, so a names file is required (YOLO).
    needs_names: bool = False
    #: The format's own fixed class names (VisDrone), from the options; None: not fixed.
    fixed_names: Callable[[ReadOptions], list[str]] | None = None


def _visdrone_names(options: ReadOptions) -> list[str]:
    return list(VISDRONE_CLASSES) + (["others"] if options.visdrone_others == "class" else [])


#: Every format `mrae convert --format` accepts; its choices are this table's keys.
FORMATS: dict[str, Format] = {
    "yolo": Format(read_yolo, ".txt", needs_names=True),
    "visdrone": Format(read_visdrone, ".txt", fixed_names=_visdrone_names),
    "dota": Format(read_dota, ".txt"),
    "voc": Format(read_voc, ".xml"),
}
