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

from mrae.data.convert.annotations import DIFFICULT
from mrae.data.convert.files import IMAGE_SUFFIXES, image_size, select_images
from mrae.data.convert.read import PROGRESS_MIN, convert
from mrae.data.convert.report import Report
from mrae.data.convert.write import write_coco

__all__ = ["DIFFICULT", "IMAGE_SUFFIXES", "PROGRESS_MIN", "Report", "convert", "image_size",
           "select_images", "write_coco"]
