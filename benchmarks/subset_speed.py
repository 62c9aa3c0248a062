"""Speed and memory of `mrae subset` on a COCO-train sized instances JSON.

Generates (in a temporary folder) a JSON shaped like COCO's instances_train2017.json: 118,287
images, 860,001 annotations with polygon segmentations (about 450 MB by default, like the real
file), 1% crowd annotations with RLE counts, object sizes drawn to match COCO's split of
41% small / 34% medium / 24% large (about half of the images hold a small
object, as in COCO). Then runs `mrae subset` on it in a fresh process per setting and prints a
markdown table of wall and CPU time (process start included) and peak resident memory.
Targets: under 30 s and 4 GB.

    .venv/bin/python benchmarks/subset_speed.py [--images 118287 --annotations 860001]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Runs `mrae subset` and reports the process's own peak RSS and CPU time. The peak is VmHWM of
# /proc/self/status (KiB), which starts afresh at exec; ru_maxrss would not: Linux carries it over
# from the parent, which holds the generated JSON in memory.
_CHILD = (
    "import resource, sys\n"
    "from mrae.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "hwm = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print('USAGE', hwm, usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def generate(path: Path, images: int, annotations: int, coords: int, seed: int = 0) -> None:
    """Write a COCO-like instances JSON in chunks (the generator itself stays small in memory)."""
    rng = np.random.default_rng(seed)
    widths = rng.choice([640, 640, 640, 500, 480, 427, 612], size=images)
    heights = np.where(rng.random(images) < 0.7, 480, 640)
    image_ids = np.sort(rng.choice(600_000, size=images, replace=False)) + 1
    # Objects cluster per image (busy street scenes hold many small objects), so draw the image of
    # each annotation with skewed weights and give every image its own scale offset.
    weights = rng.gamma(2.0, size=images)
    ann_image = np.sort(rng.choice(images, size=annotations, p=weights / weights.sum()))
    offset = rng.normal(0.0, 1.4, size=images)[ann_image]
    side = np.exp(3.8 + offset + rng.normal(0.0, 0.5, size=annotations))
    ratio = np.exp(rng.normal(0.0, 0.6, size=annotations))  # h / w
    w = np.minimum(side / np.sqrt(ratio), widths[ann_image] - 1.0)
    h = np.minimum(side * np.sqrt(ratio), heights[ann_image] - 1.0)
    x = rng.random(annotations) * (widths[ann_image] - w)
    y = rng.random(annotations) * (heights[ann_image] - h)
    crowd = rng.random(annotations) < 0.01
    categories = rng.choice(
        np.r_[1:12, 13:26, 27:29, 31:45, 46:66, 67, 70, 72:83, 84:91], size=annotations
    )
    angles = np.linspace(0, 2 * np.pi, coords // 2, endpoint=False)

    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '{"info":{"description":"COCO-like benchmark","year":2017},"licenses":[],"images":['
        )
        f.write(
            ",".join(
                json.dumps(
                    {
                        "license": 1,
                        "file_name": f"{i:012d}.jpg",
                        "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
                        "height": int(hh),
                        "width": int(ww),
                        "date_captured": "2013-11-14 17:02:52",
                        "id": int(i),
                    }
                )
                for i, ww, hh in zip(image_ids.tolist(), widths, heights, strict=True)
            )
        )
        f.write('],"annotations":[')
        chunk = 20_000
        for start in range(0, annotations, chunk):
            stop = min(start + chunk, annotations)
            n = stop - start
            cx = (x[start:stop] + w[start:stop] / 2)[:, None]
            cy = (y[start:stop] + h[start:stop] / 2)[:, None]
            px = cx + np.cos(angles)[None] * w[start:stop, None] / 2
            py = cy + np.sin(angles)[None] * h[start:stop, None] / 2
            polygon = np.round(np.stack([px, py], axis=2).reshape(n, -1), 2).tolist()
            boxes = np.round(np.stack([x, y, w, h], axis=1)[start:stop], 2).tolist()
            areas = np.round(np.pi / 4 * w[start:stop] * h[start:stop], 2).tolist()
            anns = []
            for k in range(n):
                j = start + k
                if crowd[j]:
                    size = [int(heights[ann_image[j]]), int(widths[ann_image[j]])]
                    segmentation = {"counts": rng.integers(1, 400, size=120).tolist(), "size": size}
                else:
                    segmentation = [polygon[k]]
                anns.append(
                    {
                        "segmentation": segmentation,
                        "area": areas[k],
                        "iscrowd": int(crowd[j]),
                        "image_id": int(image_ids[ann_image[j]]),
                        "bbox": boxes[k],
                        "category_id": int(categories[j]),
                        "id": j + 1,
                    }
                )
            f.write(("," if start else "") + json.dumps(anns)[1:-1])
        f.write('],"categories":[')
        f.write(
            ",".join(
                json.dumps({"supercategory": "thing", "id": i, "name": f"class{i}"})
                for i in range(1, 91)
            )
        )
        f.write("]}")


def run_subset(args: list[str]) -> tuple[float, float, float, str]:
    """Run `mrae subset ARGS` in a fresh process: (wall s, CPU s, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "subset", *args], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mrae subset {' '.join(args)} failed:\n{done.stderr}")
    usage = next(line.split() for line in done.stderr.splitlines() if line.startswith("USAGE"))
    return seconds, float(usage[2]), int(usage[1]) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=118_287)
    parser.add_argument("--annotations", type=int, default=860_001)
    parser.add_argument("--coords", type=int, default=48, help="polygon coordinates per annotation")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mrae-subset-bench-") as tmp:
        source = Path(tmp) / "instances_train.json"
        start = time.perf_counter()
        generate(source, args.images, args.annotations, args.coords)
        size_mib = source.stat().st_size / 2**20
        print(
            f"generated {size_mib:.0f} MiB in {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
        settings = {
            "any-small": ["--policy", "any-small"],
            "small-only": ["--policy", "small-only"],
            "any-small, split-val 0.05": ["--policy", "any-small", "--split-val", "0.05"],
        }
        rows = []
        last_stdout = ""
        for name, extra in settings.items():
            out = str(Path(tmp) / "out.json")
            seconds, cpu, rss, last_stdout = run_subset([str(source), "--out", out, *extra])
            rows.append((name, seconds, cpu, rss))

    print(
        f"`mrae subset` on a generated COCO-train sized JSON: {args.images:,} images, "
        f"{args.annotations:,} annotations, {size_mib:.0f} MiB"
    )
    print()
    print("| setting | wall time (s) | CPU time (s) | peak RSS (MiB) | target < 30 s, < 4096 MiB |")
    print("| --- | --- | --- | --- | --- |")
    for name, seconds, cpu, rss in rows:
        ok = "met" if seconds < 30 and rss < 4096 else "missed"
        print(f"| {name} | {seconds:.1f} | {cpu:.1f} | {rss:.0f} | {ok} |")
    print()
    print("Output of the last run:")
    print()
    print(last_stdout)


if __name__ == "__main__":
    main()
