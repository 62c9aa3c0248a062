"""PyTorch against onnxruntime per image on this CPU, for every host with MRAE template 2 and with
FPN, on whole 512x300 images and sliced 600x1024 ones (300x512 tiles, overlap 0.2).

    python benchmarks/onnx_speed.py                        # 1 thread, 3 images, the table
    python benchmarks/onnx_speed.py --images 5 --threads 2 --out docs/onnx_speed.md

Models are random (ResNet-18, 256 channels, 7 classes, the synthetic benchmark's resize) with the
one-stage heads' scores spread as a trained head's (Kaiming-initialised convs) and score
threshold 0.05: random weights run the same operations as trained ones, except that the number
of boxes reaching NMS depends on the scores. Each cell is the median over ``--images`` synthetic
scenes after one warm-up image; onnxruntime gets as many intra-op threads as torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

HOSTS = ("faster_rcnn", "retinanet", "fcos")
EXTRACTORS = {"MRAE t2": {"extractor": "mrae", "template": 2}, "FPN": {"extractor": "fpn"}}
COMMON = dict(backbone="resnet18", out_channels=256, num_classes=7, min_size=300, max_size=512)


def _scene(index: int, width: int, height: int):
    import numpy as np
    import torch

    from mrae.data.synth_scene import render

    image, _ = render(0, "val", index, width=width, height=height)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def _paired_median_ms(runs, images) -> list[float]:
    """The median ms per image of each of ``runs`` (functions of one image), taking turns on every
    image so that a change of the machine's load hits them alike; the first image warms up."""
    times: list[list[float]] = [[] for _ in runs]
    for image in images:
        for run, kept in zip(runs, times, strict=True):
            start = time.perf_counter()
            run(image)
            kept.append(time.perf_counter() - start)
    return [1000 * statistics.median(kept[1:]) for kept in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    add_out_arguments(parser)
    args = parser.parse_args()
    check_out(parser, args)
    import onnxruntime as ort
    import torch

    from mrae.engine.eta import machine_now
    from mrae.evaluation.slicing import SliceOptions, sliced_detect
    from mrae.modeling.caps import detections_per_image
    from mrae.modeling.detector import build_detector
    from mrae.modeling.onnx_detector import OnnxDetector
    from mrae.modeling.onnx_export import export_onnx

    torch.set_num_threads(args.threads)
    start_machine = machine_now()
    whole = [_scene(i, 512, 300) for i in range(args.images + 1)]
    large = [_scene(i, 1024, 600) for i in range(args.images + 1)]
    tiles = SliceOptions(tile_h=300, tile_w=512, overlap=0.2, batch_size=1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for host in HOSTS:
            for name, extractor in EXTRACTORS.items():
                torch.manual_seed(0)
                model = build_detector(**COMMON, **extractor, detector=host).eval()
                if host != "faster_rcnn":
                    for module in model.head.modules():
                        if isinstance(module, torch.nn.Conv2d):
                            torch.nn.init.kaiming_normal_(module.weight)
                            torch.nn.init.zeros_(module.bias)
                    torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, -1.0)
                path = export_onnx(model, Path(folder) / f"{host}_{name}.onnx")
                runtime = OnnxDetector(path, threads=args.threads)
                runtime.detections_per_img = detections_per_image(model)
                cells = []
                with torch.inference_mode():
                    for images, sliced in ((whole, False), (large, True)):
                        if sliced:
                            runs = [lambda im, d=d: sliced_detect(d, im, tiles) for d in (model, runtime)]
                        else:
                            runs = [lambda im, d=d: d([im]) for d in (model, runtime)]
                        cells.extend(_paired_median_ms(runs, images))
                rows.append([host, name, *(f"{c:.0f}" for c in cells),
                             f"{cells[0] / cells[1]:.2f}", f"{cells[2] / cells[3]:.2f}"])
                print(rows[-1], file=sys.stderr)
    header = ["host", "extractor", "PyTorch ms (512x300)", "onnxruntime ms (512x300)",
              "PyTorch ms (1024x600 sliced)", "onnxruntime ms (1024x600 sliced)",
              "speed-up whole", "speed-up sliced"]
    note = (f"{os.cpu_count()} cores, torch {torch.__version__}, onnxruntime {ort.__version__}, "
            f"{args.threads} thread(s), median of {args.images} images after 1, PyTorch and "
            f"onnxruntime taking turns on each image; the machine before: {start_machine}; "
            f"after: {machine_now()}")
    emit_table(header, rows, note, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
