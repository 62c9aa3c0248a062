"""Where the objects' edges lie against their boxes' edges: which VOC box convention a dataset uses.

    python benchmarks/box_edges.py ANN.json IMAGES_DIR [--margin 4]

ANN.json is the dataset converted with ``mrae convert --format voc --voc-boxes corners``, so that a
box's ``x`` and ``x + w`` are the XML's ``xmin`` and ``xmax`` as written. For every box at least 8 px
wide and high and ``margin + 2`` px inside its image, the mean absolute intensity step across the
pixel edge ``xmin + d`` (between pixels ``xmin + d - 1`` and ``xmin + d``, 0-based) is taken over the
box's inner rows, and likewise at ``xmax + d``, ``ymin + d``, ``ymax + d``. Boxes are drawn about
symmetric around their objects, so the profile at the low edge mirrors the one at the high edge
once both are measured from the object's true edges. Each convention puts those edges elsewhere:

- 1-based inclusive pixel indices (Pascal VOC): the object's pixel edges are ``xmin - 1`` and ``xmax``;
- 0-based corners: ``xmin`` and ``xmax``;
- 0-based inclusive pixel indices: ``xmin`` and ``xmax + 1``.

The convention whose mirror mismatch is smallest fits the images; a 1 px shift shows as a mismatch
several times larger. Prints a markdown table of the profiles and one of the mismatches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

#: (name, shift of the high edge when the low one is at ``min``): the object's edges as
#: ``(min + low, max + high)``; mirrored, ``profile_low(min + d)`` ~ ``profile_high(max + s - d)``
#: with ``s = high - low``.
CONVENTIONS = (("1-based inclusive pixels (VOC)", -1), ("0-based corners", 0),
               ("0-based inclusive pixels", 1))  # fmt: skip


def edge_profiles(ann: Path, images: Path, margin: int) -> tuple[dict[str, np.ndarray], int]:
    """Mean |intensity step| at ``edge + d`` for d in -margin..margin, per edge (x1, x2, y1, y2)."""
    data = json.loads(ann.read_text())
    boxes: dict[int, list[list[float]]] = {}
    for a in data["annotations"]:
        if not a.get("iscrowd"):
            boxes.setdefault(a["image_id"], []).append(a["bbox"])
    offsets = range(-margin, margin + 1)
    sums = {k: np.zeros(len(offsets)) for k in ("x1", "x2", "y1", "y2")}
    count = 0
    for image in data["images"]:
        if image["id"] not in boxes:
            continue
        pixels = np.asarray(Image.open(images / image["file_name"]).convert("L"), dtype=np.float64)
        height, width = pixels.shape
        for x, y, w, h in boxes[image["id"]]:
            x1, y1, x2, y2 = int(x), int(y), int(round(x + w)), int(round(y + h))
            inside = (x1 >= margin + 2 and y1 >= margin + 2 and x2 <= width - margin - 2
                      and y2 <= height - margin - 2)  # fmt: skip
            if not inside or x2 - x1 < 8 or y2 - y1 < 8:
                continue
            rows, cols = pixels[y1 + 2:y2 - 2], pixels[:, x1 + 2:x2 - 2]
            for i, d in enumerate(offsets):
                sums["x1"][i] += np.abs(rows[:, x1 + d] - rows[:, x1 + d - 1]).mean()
                sums["x2"][i] += np.abs(rows[:, x2 + d] - rows[:, x2 + d - 1]).mean()
                sums["y1"][i] += np.abs(cols[y1 + d] - cols[y1 + d - 1]).mean()
                sums["y2"][i] += np.abs(cols[y2 + d] - cols[y2 + d - 1]).mean()
            count += 1
    return {k: v / max(count, 1) for k, v in sums.items()}, count


def mirror_mismatch(low: np.ndarray, high: np.ndarray, shift: int) -> float:
    """Mean |low(min + d) - high(max + shift - d)| over the offsets both profiles hold."""
    mirrored = high[::-1]  # mirrored[i] = high(max - d_i)
    if shift == 0:
        pairs = low, mirrored
    elif shift > 0:
        pairs = low[shift:], mirrored[:-shift]
    else:
        pairs = low[:shift], mirrored[-shift:]
    return float(np.abs(pairs[0] - pairs[1]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ann", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--margin", type=int, default=4)
    args = parser.parse_args()
    profiles, count = edge_profiles(args.ann, args.images, args.margin)
    offsets = range(-args.margin, args.margin + 1)
    print(f"{count} boxes; mean |intensity step| across the pixel edge at (written value + d)\n")
    print("| edge | " + " | ".join(f"d={d:+d}" for d in offsets) + " |")
    print("|---|" + "--:|" * len(offsets))
    for name, values in profiles.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    print("\n| convention | x mirror mismatch | y mirror mismatch |\n|---|--:|--:|")
    for name, shift in CONVENTIONS:
        mx = mirror_mismatch(profiles["x1"], profiles["x2"], shift)
        my = mirror_mismatch(profiles["y1"], profiles["y2"], shift)
        print(f"| {name} | {mx:.2f} | {my:.2f} |")


if __name__ == "__main__":
    main()
