"""`mrae stats ANN.json [--val VAL.json] [--plot OUT.png]`: objects per class and size (:mod:`mrae.data.stats`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrae.data.sizes import ORIGINAL_PIXELS
from mrae.data.stats import format_tables, plot_sizes, summarize
from mrae.data.validate import load_coco_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "annotations", metavar="ANN.json", help="COCO instances JSON (the train split)"
    )
    parser.add_argument(
        "--val", metavar="VAL.json", default=None, help="a second split to count and plot beside it"
    )
    parser.add_argument(
        "--plot", metavar="OUT.png", default=None, help="write the width-height plot (Fig. 4) here"
    )
    parser.add_argument(
        "--area",
        choices=("bbox", "segm"),
        default="bbox",
        help="area of COCO's small/medium/large buckets: bbox w * h, or COCO's 'area' field "
        "(COCOeval's rule) (default: %(default)s)",
    )


def main(args: argparse.Namespace) -> int:
    if args.val is None:
        splits = {Path(args.annotations).name: load_coco_json(args.annotations)}
    else:
        splits = {"train": load_coco_json(args.annotations), "val": load_coco_json(args.val)}
    summaries = {name: summarize(data, area=args.area) for name, data in splits.items()}
    print(format_tables(summaries))
    print(
        f"\nSizes are in {ORIGINAL_PIXELS} (the annotation file's boxes), before the model's "
        "resize; `mrae anchors ANN.json --config X.yaml` shows them as the model sees them."
    )
    if args.plot is not None:
        plot_sizes({name: s["wh"] for name, s in summaries.items()}, args.plot)
        print(f"\nwrote {args.plot}")
    return 0
