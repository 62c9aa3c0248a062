"""`mrae stats ANN.json [--val VAL.json] [--plot OUT.png]`: objects per class and size (:mod:`mrae.data.stats`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrae.data.sizes import ORIGINAL_PIXELS
from mrae.data.stats import format_tables, plot_sizes, summarize
from mrae.data.validate import load_coco_json
from mrae.errors import ConfigError
from mrae.ownership import check_file, dataset_roots


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
        "--overwrite", action="store_true",
        help="replace an existing --plot file (never an input or a file inside its dataset)",
    )
    parser.add_argument(
        "--area",
        choices=("bbox", "segm"),
        default="bbox",
        help="area of COCO's small/medium/large buckets: bbox w * h, or COCO's 'area' field "
        "(COCOeval's rule) (default: %(default)s)",
    )


#: What ``--plot`` may end with (matplotlib picks the format from it).
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot(args: argparse.Namespace) -> None:
    """``--plot``: a new file (or ``--overwrite``) ending in one of :data:`PLOT_SUFFIXES`, never
    an input or a file inside an input's dataset; checked before anything is read."""
    plot = Path(args.plot)
    if plot.suffix.lower() not in PLOT_SUFFIXES:
        raise ConfigError(f"--plot {plot}: not an image file name; use a .png path (or .pdf, .svg)")
    inputs = [args.annotations, args.val]
    check_file(plot, "stats", inputs=inputs, overwrite=args.overwrite, flag="--plot",
               datasets=dataset_roots(inputs))


def main(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_plot(args)
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
