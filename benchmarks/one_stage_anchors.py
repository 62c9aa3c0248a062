"""What a one-stage head costs on MRAE's stride-4 map: RetinaNet with a few anchor choices, FCOS,
and Faster R-CNN for reference, at the paper's 512x300.

    python benchmarks/one_stage_anchors.py                       # every row, 1 thread, the table
    python benchmarks/one_stage_anchors.py --steps 5 --threads 2 --out docs/one_stage_anchors.md

Each row runs in its own process (so that its peak memory is its own): ResNet-18, MRAE template 2
(global), 256 channels, 7 classes (the synthetic benchmark's 6 + background), from scratch, batch
``--batch`` of synthetic 512x300 scenes (:func:`mrae.data.synth_scene.render`, drawn on the fly,
nothing read from disk). Columns: anchors (or points) per image; a training step (forward,
losses, backward, SGD step), the median of ``--steps`` after ``--warmup``, and the same per image;
inference per image (batch 1, the median over ``--steps`` images after one warm-up); the peak
resident memory of the process and its rise over the built model's (what the steps add).
Clustered sizes and ratios are ``mrae anchors`` on the synthetic training set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

ROWS: dict[str, dict] = {
    "Faster R-CNN, 4 sizes x 3 ratios (reference)": {"detector": "faster_rcnn"},
    "RetinaNet, 4 sizes x 3 ratios (8-64 px)": {"detector": "retinanet"},
    "RetinaNet, 4 x 3 clustered": {"detector": "retinanet", "anchor_sizes": [6.8, 11.4, 19.0, 44.0],
                                   "aspect_ratios": [0.76, 0.99, 1.31]},
    "RetinaNet, 4 sizes x 1 ratio": {"detector": "retinanet", "aspect_ratios": [1.0]},
    "RetinaNet, 3 x 1 clustered": {"detector": "retinanet", "anchor_sizes": [7.7, 15.0, 40.0],
                                   "aspect_ratios": [1.0]},
    "RetinaNet, 2 x 1 clustered": {"detector": "retinanet", "anchor_sizes": [9.8, 27.0],
                                   "aspect_ratios": [1.0]},
    "FCOS, 1 point per position": {"detector": "fcos"},
}
COMMON = dict(extractor="mrae", template=2, mode="global", backbone="resnet18", out_channels=256,
              num_classes=7, min_size=300, max_size=512)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _scenes(count: int, start: int = 0):
    import numpy as np
    import torch

    from mrae.data.synth_scene import render

    images, targets = [], []
    for index in range(start, start + count):
        image, annotations = render(0, "train", index)
        images.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1))
        boxes = torch.tensor([box for _, box in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        targets.append({"boxes": boxes, "labels": torch.tensor([c for c, _ in annotations])})
    return images, targets


def measure(name: str, steps: int, warmup: int, batch: int) -> dict:
    """One row, in this process: see the module docstring."""
    import torch

    from mrae.modeling.detector import build_detector

    torch.manual_seed(0)
    model = build_detector(**COMMON, **ROWS[name])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    images, targets = _scenes(batch * (warmup + steps))
    built = _rss_mib()
    with torch.no_grad():
        resized, _ = model.transform(images[:1])
        features = list(model.backbone(resized.tensors).values())
        generator = getattr(model, "anchor_generator", None) or model.rpn.anchor_generator
        anchors = len(generator(resized, features)[0])

    model.train()
    times = []
    for step in range(warmup + steps):
        chunk = slice(step * batch, (step + 1) * batch)
        start = time.perf_counter()
        losses = model(images[chunk], [dict(t) for t in targets[chunk]])
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times[warmup:])

    model.eval()
    inference = []
    with torch.inference_mode():
        for image in images[: steps + 1]:
            start = time.perf_counter()
            model([image])
            inference.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"row": name, "anchors": anchors, "step_s": step_s, "image_s": step_s / batch,
            "infer_ms": 1000 * statistics.median(inference[1:]), "peak_mib": peak,
            "steps_mib": peak - built}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help="row names (default: all)")
    add_out_arguments(parser)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a row, in a child process
    args = parser.parse_args()
    if args.one is None:
        check_out(parser, args)
    import torch

    torch.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.steps, args.warmup, args.batch)))
        return 0

    results = []
    for name in args.rows:
        command = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--batch", str(args.batch), "--threads", str(args.threads)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{name}: {results[-1]}", file=sys.stderr)
    reference = results[0]["image_s"]
    rows = [[r["row"], f"{r['anchors']:,}", f"{r['step_s']:.2f}", f"{r['image_s']:.2f}",
             f"{r['image_s'] / reference:.2f}", f"{r['infer_ms']:.0f}", f"{r['peak_mib']:.0f}",
             f"{r['steps_mib']:.0f}"] for r in results]
    header = ["row", "anchors / image", "train s / step", "train s / image", "vs first row",
              "infer ms / image", "peak RSS MiB", "rise over the model MiB"]
    load = os.getloadavg()
    note = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
            f"{torch.__version__}, {args.threads} thread(s), batch {args.batch}, median of "
            f"{args.steps} steps after {args.warmup}; load average before/after: "
            f"{start_load[0]:.2f} / {load[0]:.2f}")
    emit_table(header, rows, note, args.out)
    return 0


start_load = os.getloadavg()

if __name__ == "__main__":
    sys.exit(main())
