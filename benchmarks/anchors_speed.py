"""Seconds of `mrae anchors` on COCO-train scale (target: under 10 s for 860k boxes).

    python benchmarks/anchors_speed.py [--images 118287] [--boxes 860001]

Writes a COCO instances JSON of that size into a temporary folder (boxes log-uniform in
2..400 px, aspect ratios log-uniform in 1/3..3, 1% crowd; images 640x480 or 480x640), runs the
whole command on it (reading the JSON included) and prints a markdown table of the phases.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mrae.cli import main as cli_main
from mrae.data import anchors


def write_coco(path: Path, n_images: int, n_boxes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    portrait = rng.random(n_images) < 0.2
    heights = np.where(portrait, 640, 480)
    widths = np.where(portrait, 480, 640)
    image_of = rng.integers(0, n_images, n_boxes)
    scale = np.exp(rng.uniform(np.log(2), np.log(400), n_boxes))
    ratio = np.exp(rng.uniform(np.log(1 / 3), np.log(3), n_boxes))
    w = np.minimum(scale / np.sqrt(ratio), widths[image_of] - 1)
    h = np.minimum(scale * np.sqrt(ratio), heights[image_of] - 1)
    x = rng.random(n_boxes) * (widths[image_of] - w)
    y = rng.random(n_boxes) * (heights[image_of] - h)
    crowd = rng.random(n_boxes) < 0.01
    data = {
        "images": [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": int(widths[i]),
                    "height": int(heights[i])} for i in range(n_images)],
        "annotations": [{"id": k + 1, "image_id": int(image_of[k]) + 1, "category_id": 1,
                         "bbox": [round(float(x[k]), 2), round(float(y[k]), 2),
                                  round(float(w[k]), 2), round(float(h[k]), 2)],
                         "area": round(float(w[k] * h[k]), 2), "iscrowd": int(crowd[k])}
                        for k in range(n_boxes)],
        "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
    }
    path.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--boxes", type=int, default=860_001)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "instances_train.json"
        write_coco(ann, args.images, args.boxes)
        mb = ann.stat().st_size / 2**20

        t0 = time.perf_counter()
        boxes, image_hw = anchors.load_boxes(ann)
        t1 = time.perf_counter()
        boxes, image_hw = anchors.resize_boxes(boxes, image_hw)
        sizes, ratios = anchors.cluster_anchors(boxes[:, 2:])
        t2 = time.perf_counter()
        anchors.compare(boxes, image_hw, {"ours": (sizes, ratios), "torchvision": (
            anchors.TORCHVISION_SIZES, anchors.TORCHVISION_RATIOS)})
        t3 = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli_main(["anchors", str(ann)])
        t4 = time.perf_counter()
    assert rc == 0, out.getvalue()

    print(f"`mrae anchors` on {args.boxes} boxes in {args.images} images ({mb:.0f} MB JSON)\n")
    print("| phase | seconds |")
    print("|---|--:|")
    print(f"| read + check JSON (load_boxes) | {t1 - t0:.2f} |")
    print(f"| resize + k-means (cluster_anchors) | {t2 - t1:.2f} |")
    print(f"| score 2 anchor sets x 3 strides (compare) | {t3 - t2:.2f} |")
    print(f"| whole command (`mrae anchors ANN.json`) | {t4 - t3:.2f} |")


if __name__ == "__main__":
    main()
