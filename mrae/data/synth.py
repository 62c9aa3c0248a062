"""The synthetic small-object benchmark written as a COCO dataset (`mrae synth OUT_DIR`).

COCO cannot be downloaded where this project is tested, so this module writes the project's
embedded benchmark: a COCO-format detection dataset of small shapes on cluttered backgrounds,
drawn by :func:`mrae.data.synth_scene.render_scene` (whose docstring gives the design of the
scenes: classes, sizes, layout, background, contrast).

Files: ``OUT/images/{train,val}/NNNNNN.jpg`` and ``OUT/annotations/instances_{train,val}.json``.
Images are JPEG at quality 95 without chroma subsampling (PNG encoding alone costs 3x our whole
per-image budget; libjpeg is byte-deterministic for a given Pillow build).

Determinism: every image depends only on ``(seed, split, index)``, so the bytes do not depend on
the number of workers or the order they run in. Boxes are rounded to 1/100 px and the JSON is
written with a fixed key order, images and annotations sorted by id. The annotation JSON files are
written last and atomically, so their presence means the split is complete.

Large images (``mrae synth OUT --large``, for sliced inference, docs/slicing.md): 2048x1536 images
with the same kinds and sizes of objects and ``object_factor`` = 8 times as many labelled objects
and distractors per image (24..120 and 16..80; the area is 20x the default's, so they are spread
out 2.5x thinner, and an image keeps under the detector's 300 detections). The default
(``object_factor`` 1, 512x300) draws exactly the same random numbers as before: its files are
byte-identical.

Annotations: ``bbox = [x, y, w, h]`` (float pixels, tight around the polygon),
``area = w * h`` (the box area, which is what the small-object subset and the size buckets use),
``iscrowd = 0``; categories have ids 1..6 in the order of :data:`~mrae.data.synth_scene.CLASSES`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm import tqdm

from mrae.data.synth_scene import CLASSES, SPLITS, render
from mrae.errors import ConfigError
from mrae.files import atomic_path, write_text_atomic
from mrae.parallel import map_in_processes

IMAGE_EXT = ".jpg"
JPEG_QUALITY = 95
MIN_SIDE = 96  # px; room for a 64 px object and margins
#: ``mrae synth --large``: image size (width, height) px and object_factor.
LARGE_SIZE = (2048, 1536)
LARGE_OBJECT_FACTOR = 8
LARGE_IMAGES = 100  # default training images with --large (val: a quarter)



def render_and_save(job: tuple) -> list[tuple[int, list[float]]]:
    """Render one image and write it as JPEG; job = (seed, split, index, width, height,
    medium_fraction, path[, object_factor]). Returns its annotations as :func:`render` does."""
    seed, split, index, width, height, medium_fraction, path, *rest = job
    image, annotations = render(seed, split, index, width, height, medium_fraction, *rest)
    with atomic_path(path) as tmp:  # a link at path is replaced, never written through
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return annotations


def _coco_json(split: str, n: int, width: int, height: int, per_image: list, seed: int,
               object_factor: int = 1) -> dict:
    images, annotations = [], []
    for i, objects in enumerate(per_image):
        images.append({"id": i + 1, "file_name": f"{i:06d}{IMAGE_EXT}", "width": width, "height": height})
        for category, (x, y, w, h) in objects:
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                "bbox": [x, y, w, h], "area": round(w * h, 2), "iscrowd": 0,
            })  # fmt: skip
    info = {
        "description": f"mrae synthetic small-object benchmark, split {split}",
        "version": "1", "year": 2025, "seed": seed, "images": n,
    }
    if object_factor != 1:  # the default's JSON stays byte-identical
        info["object_factor"] = object_factor
    return {
        "info": info,
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"}
                       for i, name in enumerate(CLASSES)],
    }  # fmt: skip


def _write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, separators=(",", ":")))  # compact: COCO files are large


def generate(out_dir: str | os.PathLike, train_images: int = 800, val_images: int = 200,
             seed: int = 0, width: int = 512, height: int = 300, medium_fraction: float = 0.1,
             workers: int | None = None, progress: bool = True,
             object_factor: int = 1) -> dict[str, str]:
    """Write the synthetic dataset under `out_dir` and return its four paths.

    Layout: ``out_dir/images/{train,val}/NNNNNN.jpg`` and
    ``out_dir/annotations/instances_{train,val}.json``. Returns
    ``{"train_images", "train_annotations", "val_images", "val_annotations"}`` as strings.
    Same arguments give byte-identical files, whatever `workers` is (None: all CPU cores, up to 8;
    0 or 1: in this process). ``object_factor`` multiplies the number of objects and distractors
    per image (``--large``).
    """
    for name, value, low in (("train_images", train_images, 1), ("val_images", val_images, 1),
                             ("width", width, MIN_SIDE), ("height", height, MIN_SIDE),
                             ("object_factor", object_factor, 1)):
        if int(value) != value or value < low:
            raise ConfigError(f"synth: {name} must be an integer >= {low}, got {value!r}")
    if not 0.0 <= medium_fraction <= 1.0:
        raise ConfigError(f"synth: medium_fraction must be in [0, 1], got {medium_fraction!r}")
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    if workers < 0:
        raise ConfigError(f"synth: workers must be >= 0, got {workers!r}")

    out = Path(out_dir)
    counts = dict(zip(SPLITS, (int(train_images), int(val_images)), strict=True))  # train, val
    jobs = []
    for split, n in counts.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        extra = (int(object_factor),) if object_factor != 1 else ()
        jobs += [(seed, split, i, width, height, medium_fraction,
                  str(out / "images" / split / f"{i:06d}{IMAGE_EXT}"), *extra) for i in range(n)]
    (out / "annotations").mkdir(parents=True, exist_ok=True)

    in_order = (map(render_and_save, jobs) if workers <= 1 or len(jobs) < 2 * workers
                else map_in_processes(render_and_save, jobs, workers, what="mrae synth"))
    results = list(tqdm(in_order, total=len(jobs), desc="synth", unit="img", disable=not progress))

    paths = {}
    start = 0
    for split, n in counts.items():
        data = _coco_json(split, n, width, height, results[start:start + n], seed, int(object_factor))
        start += n
        ann = out / "annotations" / f"instances_{split}.json"
        _write_json_atomic(ann, data)
        paths[f"{split}_images"] = str(out / "images" / split)
        paths[f"{split}_annotations"] = str(ann)
    return paths
