"""Where an exported detector spends its time in onnxruntime: milliseconds per image by operator
type and by node, from onnxruntime's own profiler.

    python benchmarks/onnx_profile.py                               # Faster R-CNN + FPN, 3 images
    python benchmarks/onnx_profile.py --host fcos --extractor "MRAE t2" --images 5

The model is built as in ``benchmarks/onnx_speed.py`` (random ResNet-18, 256 channels, 7 classes,
512x300 synthetic scenes, 1 thread). For Faster R-CNN on several maps (FPN) it is exported twice,
with mrae's RoI pooling (``mrae.modeling.roi_pool``: one gather puts the maps' RoIs back in order)
and with torchvision's ``MultiScaleRoIAlign`` (an element-wise scatter per map), and the two
columns compare them image by image in one run. The times are the sums of onnxruntime's kernel
times per image (the profiler's ``*_kernel_time`` events), so a column's total is a little less
than a wall-clock run.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_speed import COMMON, EXTRACTORS, HOSTS, _scene  # noqa: E402


def profile(path: Path, images: list, threads: int, folder: Path) -> tuple[Counter, Counter]:
    """onnxruntime's kernel time (ms per image) of the model at ``path`` by op type and by node,
    over ``images`` after one warm-up image."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / path.stem)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for image in images:
        session.run(None, {"image": image.numpy()})
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warmed = runs[0]["ts"] + runs[0]["dur"]  # the first image warms up: its events are left out
    by_type, by_node = Counter(), Counter()
    per_image = 1000 * (len(images) - 1)  # profiler durations are in microseconds
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= warmed:
            by_type[event["args"]["op_name"]] += event["dur"] / per_image
            by_node[event["name"].removesuffix("_kernel_time")] += event["dur"] / per_image
    return by_type, by_node


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=HOSTS, default="faster_rcnn")
    parser.add_argument("--extractor", choices=list(EXTRACTORS), default="FPN")
    parser.add_argument("--images", type=int, default=3, help="images profiled after one warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=10, help="rows of each table")
    args = parser.parse_args()
    if args.images < 1:
        parser.error("--images must be at least 1")

    import torch
    from torchvision.ops import MultiScaleRoIAlign

    from mrae.engine.eta import machine_now
    from mrae.modeling.detector import build_detector
    from mrae.modeling.onnx_export import export_onnx
    from mrae.tables import markdown_table

    torch.set_num_threads(args.threads)
    before = machine_now()
    torch.manual_seed(0)
    model = build_detector(**COMMON, **EXTRACTORS[args.extractor], detector=args.host).eval()
    images = [_scene(i, 512, 300) for i in range(args.images + 1)]
    variants = {"mrae": model}
    pool = getattr(getattr(model, "roi_heads", None), "box_roi_pool", None)
    if pool is not None and len(pool.featmap_names) > 1:
        plain = copy.deepcopy(model)
        plain.roi_heads.box_roi_pool = MultiScaleRoIAlign(pool.featmap_names, pool.output_size,
                                                          pool.sampling_ratio)
        variants["torchvision's MultiScaleRoIAlign"] = plain
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, detector) in enumerate(variants.items()):
            path = export_onnx(detector, Path(tmp) / f"variant{number}.onnx")
            results[name] = profile(path, images, args.threads, Path(tmp))
            print(f"{name}: {sum(results[name][0].values()):.0f} ms per image", file=sys.stderr)

    names = list(results)
    for table, index in (("operator type", 0), ("node", 1)):
        totals = Counter()
        for by_type_or_node in (r[index] for r in results.values()):
            totals.update(by_type_or_node)
        top = [key for key, _ in totals.most_common(args.top)]
        rows = [[key, *(f"{results[n][index].get(key, 0.0):.1f}" for n in names)] for key in top]
        rows.append([f"all {table}s", *(f"{sum(results[n][index].values()):.1f}" for n in names)])
        header = [table, *(f"ms / image, pooling: {n}" if len(names) > 1 else "ms / image" for n in names)]
        print(markdown_table(header, rows) + "\n")
    print(f"{args.host}, {args.extractor}, 512x300, {args.threads} thread(s), onnxruntime kernel time "
          f"summed per image over {args.images} image(s) after 1; the machine before: {before}; "
          f"after: {machine_now()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
