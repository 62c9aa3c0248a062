"""Images per second of `mrae.data.synth.generate` (target: >= 100 images/s on 2 cores).

    python benchmarks/synth_speed.py [--images 600] [--workers 1 2]

Writes into a temporary folder (deleted afterwards) and prints a markdown table: one row per
worker count, with the wall time including pool start-up and the JSON files, and the CPU time
per image of one process (render + JPEG + write), which other work on a shared machine does not
inflate: 2000 / (CPU ms per image) is the rate two free cores reach.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from mrae.data.synth import generate, render_and_save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600, help="images in total (80% train)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    train = args.images * 4 // 5
    val = args.images - train

    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            generate(tmp, train_images=train, val_images=val, seed=0, workers=workers,
                     progress=False)
            seconds = time.perf_counter() - start
        rows.append((workers, seconds))

    with tempfile.TemporaryDirectory() as tmp:
        n = min(args.images, 200)
        cpu = time.process_time()
        for i in range(n):
            render_and_save((0, "train", i, 512, 300, 0.1, os.path.join(tmp, f"{i}.jpg")))
        cpu_ms = (time.process_time() - cpu) * 1000 / n

    print(f"synthetic data, 512x300 px, {args.images} images, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| workers | seconds | images/s |")
    print("|--:|--:|--:|")
    for workers, seconds in rows:
        print(f"| {workers} | {seconds:.2f} | {args.images / seconds:.0f} |")
    print(f"\nCPU time per image: {cpu_ms:.1f} ms -> {2000 / cpu_ms:.0f} images/s on 2 free cores")


if __name__ == "__main__":
    main()
