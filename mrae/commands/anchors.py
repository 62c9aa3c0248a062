"""`mrae anchors ANN.json`: anchors fitted to the training boxes at the model's resize (:mod:`mrae.data.anchors`)."""

from __future__ import annotations

import argparse

import numpy as np

from mrae.data.anchors import check_strides, fit_anchors, markdown_table, yaml_snippet
from mrae.data.sizes import ORIGINAL_PIXELS, RESIZED_PIXELS
from mrae.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ann", help="COCO instances JSON of the training set")
    parser.add_argument("--config", metavar="X.yaml", default=None,
                        help="training config whose model.min_size / max_size / fixed_size resize "
                             "the boxes (instead of --min-size, --max-size, --fixed-size)")
    parser.add_argument("--min-size", type=float, default=None,
                        help="training resize: shorter side target (default 300)")
    parser.add_argument("--max-size", type=float, default=None,
                        help="training resize: longer side limit (default 512)")
    parser.add_argument("--fixed-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="resize every image to H x W instead")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8, 16],
                        help="feature strides to score the anchors on (default 4 8 16)")
    parser.add_argument("--scales", type=int, default=4, help="size clusters (default 4)")
    parser.add_argument("--ratios", type=int, default=3, help="aspect-ratio clusters (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")


def model_resize(args: argparse.Namespace) -> tuple[float, float, tuple[int, int] | None, str]:
    """``(min_size, max_size, fixed_size, source)`` of the resize to apply to the boxes.

    From ``--config`` (the model section of a training config, checked as ``mrae train`` checks
    it) or from ``--min-size`` / ``--max-size`` / ``--fixed-size`` (defaults 300 / 512); giving
    both is a ConfigError, since they could disagree.
    """
    explicit = [f"--{name.replace('_', '-')}" for name in ("min_size", "max_size", "fixed_size")
                if getattr(args, name) is not None]
    if args.config is not None:
        if explicit:
            raise ConfigError(f"--config {args.config} sets the resize; drop {', '.join(explicit)} "
                              "(or set model.min_size / model.max_size in the config)")
        from mrae.engine.config import load_config

        model = load_config(args.config).model
        fixed = tuple(int(v) for v in model.fixed_size) if model.fixed_size is not None else None
        return float(model.min_size), float(model.max_size), fixed, f"from {args.config}"
    min_size = 300.0 if args.min_size is None else args.min_size
    max_size = 512.0 if args.max_size is None else args.max_size
    if min_size <= 0 or max_size <= 0:
        raise ConfigError(f"--min-size and --max-size must be > 0, got {min_size:g}, {max_size:g}")
    fixed = tuple(args.fixed_size) if args.fixed_size is not None else None
    if fixed is not None and min(fixed) <= 0:
        raise ConfigError(f"--fixed-size H W must be > 0, got {list(fixed)}")
    return min_size, max_size, fixed, "from the command line" if explicit else "the default"


def main(args: argparse.Namespace) -> int:
    check_strides(args.strides)
    min_size, max_size, fixed_size, source = model_resize(args)
    fit = fit_anchors(args.ann, min_size, max_size, fixed_size, args.strides, args.scales,
                      args.ratios, args.seed)
    boxes, original = fit.boxes, fit.original
    resize = (f"fixed_size {fixed_size[0]}x{fixed_size[1]}" if fixed_size
              else f"min_size {min_size:g}, max_size {max_size:g}")
    side = np.median(np.sqrt(boxes[:, 2] * boxes[:, 3]))
    side_original = np.median(np.sqrt(original[:, 2] * original[:, 3]))
    print(yaml_snippet(fit.sizes, fit.ratios))
    print()
    print(f"Sizes in {RESIZED_PIXELS}: {len(boxes)} boxes of {args.ann} after the model's resize "
          f"({resize}, {source}); sqrt(w*h) median {side:.1f} px ({side_original:.1f} "
          f"{ORIGINAL_PIXELS}). Anchors as torchvision places them: corners rounded to whole "
          f"pixels, centred at k * stride.")
    print()
    print(markdown_table(fit.rows, args.strides))
    print()
    for row in fit.rows:
        print(f"{row['name']}: sizes {list(row['sizes'])}, aspect ratios {list(row['ratios'])}")
    return 0
