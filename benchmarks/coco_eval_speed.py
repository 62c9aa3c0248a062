"""pycocotools against faster-coco-eval on one detections file: speed and agreement.

    python benchmarks/coco_eval_speed.py --annotations GT.json --detections DETS.json \
        [--densify 1000] [--repeat 3] [--out docs/coco_eval.md]

For each maxDets setting (COCO's 1,10,100 and AI-TOD's 1,100,1500) both evaluators run the same
bbox evaluation: COCO's area ranges and AI-TOD's buckets in one ``evaluate`` + ``accumulate``
(what :func:`mrae.evaluation.coco_metrics.coco_metrics` runs), timed from the detections list to
the accumulated arrays (the ground truth loaded once, before), the median of ``--repeat`` runs.
Both arrays are summarised by :func:`mrae.evaluation.coco_metrics.summarize`; the table gives each
evaluator's seconds, AP, and the largest absolute difference over every metric of the summary.

``--densify N`` adds, per image, detections up to N in all: copies of its ground-truth boxes
shifted by up to 30% of their size, at scores below every real one (seeded): a dense scene for the
maxDets past 100 that a real file of a few detections an image does not exercise.

faster-coco-eval is not a dependency of mrae: install it beside (``pip install --target /tmp/fce
faster-coco-eval`` and ``PYTHONPATH=/tmp/fce``) to run this.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

from mrae.data.sizes import AITOD_AREA_RANGES, COCO_AREA_RANGES  # noqa: E402
from mrae.evaluation.coco_metrics import summarize  # noqa: E402
from mrae.evaluation.options import AITOD_MAX_DETS, COCO_MAX_DETS  # noqa: E402

SETTINGS = (("COCO", COCO_MAX_DETS), ("AI-TOD", AITOD_MAX_DETS))


def area_ranges() -> tuple[list[list[float]], list[str]]:
    ranges = {**COCO_AREA_RANGES, **{f"bucket_{k}": v for k, v in AITOD_AREA_RANGES.items()}}
    return [[float(lo), float(hi)] for lo, hi in ranges.values()], list(ranges)


def densify(gt: dict[str, Any], detections: list[dict[str, Any]], per_image: int,
            seed: int = 0) -> list[dict[str, Any]]:
    """``detections`` plus jittered copies of each image's GT boxes up to ``per_image`` in all."""
    rng = np.random.default_rng(seed)
    floor = min((d["score"] for d in detections), default=1.0)
    count: dict[int, int] = {}
    for d in detections:
        count[d["image_id"]] = count.get(d["image_id"], 0) + 1
    boxes: dict[int, list[tuple[list[float], int]]] = {}
    for a in gt["annotations"]:
        boxes.setdefault(a["image_id"], []).append((a["bbox"], a["category_id"]))
    extra = []
    for image in gt["images"]:
        objects = boxes.get(image["id"])
        missing = per_image - count.get(image["id"], 0)
        if not objects or missing <= 0:
            continue
        picks = rng.integers(0, len(objects), missing)
        shifts = rng.uniform(-0.3, 0.3, (missing, 4))
        scores = rng.uniform(0.0, floor, missing)
        for pick, shift, score in zip(picks, shifts, scores, strict=True):
            (x, y, w, h), cat = objects[pick]
            box = [x + shift[0] * w, y + shift[1] * h, w * (1 + shift[2]), h * (1 + shift[3])]
            extra.append({"image_id": image["id"], "category_id": cat, "bbox": box,
                          "score": float(score)})
    return detections + extra


def run_pycocotools(gt, detections, image_ids, max_dets):
    from pycocotools.cocoeval import COCOeval

    ranges, labels = area_ranges()
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluator.params.imgIds = image_ids
        evaluator.params.maxDets = list(max_dets)
        evaluator.params.areaRng, evaluator.params.areaRngLbl = ranges, labels
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def run_faster(gt, detections, image_ids, max_dets):
    from faster_coco_eval import COCOeval_faster

    ranges, labels = area_ranges()
    evaluator = COCOeval_faster(gt, gt.loadRes(detections), "bbox", print_function=lambda *a: None)
    evaluator.params.imgIds = image_ids
    evaluator.params.maxDets = list(max_dets)
    evaluator.params.areaRng, evaluator.params.areaRngLbl = ranges, labels
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def timed(run, repeat: int):
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def largest_difference(a: dict[str, float], b: dict[str, float]) -> float:
    diffs = [abs(a[k] - b[k]) for k in a if not (np.isnan(a[k]) and np.isnan(b[k]))]
    return max(diffs, default=0.0) if all(np.isnan(a[k]) == np.isnan(b[k]) for k in a) else np.inf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", required=True, help="COCO instances JSON (ground truth)")
    parser.add_argument("--detections", required=True, help="COCO results JSON of a model on it")
    parser.add_argument("--densify", type=int, default=0,
                        help="also time a file padded to this many detections an image")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    add_out_arguments(parser)
    args = parser.parse_args(argv)
    check_out(parser, args)

    from faster_coco_eval import COCO as FasterCOCO
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(args.annotations)
    faster_gt = FasterCOCO(args.annotations)
    detections = json.loads(Path(args.detections).read_text())
    image_ids = sorted(gt.getImgIds())
    files = [("real", detections)]
    if args.densify:
        files.append((f"padded to {args.densify}/img", densify(gt.dataset, detections, args.densify)))

    rows = []
    for file_name, dets in files:
        for setting, max_dets in SETTINGS:
            slow, reference = timed(lambda d=dets, m=max_dets: run_pycocotools(gt, d, image_ids, m),
                                    args.repeat)
            fast, candidate = timed(lambda d=dets, m=max_dets: run_faster(faster_gt, d, image_ids, m),
                                    args.repeat)
            ours, theirs = summarize(reference, AITOD_AREA_RANGES), summarize(candidate, AITOD_AREA_RANGES)
            rows.append([file_name, str(len(dets)), f"{setting} {','.join(map(str, max_dets))}",
                         f"{slow:.2f}", f"{fast:.2f}", f"{slow / fast:.1f}x",
                         f"{100 * ours['AP']:.2f}", f"{100 * theirs['AP']:.2f}",
                         f"{largest_difference(ours, theirs):.1e}"])
    header = ["detections", "count", "maxDets", "pycocotools s", "faster-coco-eval s", "speed-up",
              "AP pycocotools", "AP faster-coco-eval", "max |diff| (all metrics)"]
    note = (f"`python benchmarks/coco_eval_speed.py --annotations {args.annotations} --detections "
            f"{args.detections}{f' --densify {args.densify}' if args.densify else ''} --repeat "
            f"{args.repeat}`: {len(image_ids)} images; seconds from the detections list to the "
            "accumulated arrays (loadRes + evaluate + accumulate, 8 area ranges), median of "
            f"{args.repeat}; AP x100 at the setting's largest maxDets.")
    emit_table(header, rows, note, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
