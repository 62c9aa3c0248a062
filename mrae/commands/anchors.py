"""`mrae anchors ANN.json`: anchors fitted to the training boxes at the model's resize (:mod:`mrae.data.anchors`).

The resize is the one the model really applies in training: a config's ``model.min_size`` /
``max_size`` / ``fixed_size`` on whole images, or on ``data.train_crop`` tiles when
``data.crop_scale`` is ``tile``; ``--native`` takes the boxes at their images' own scale, whatever
the images' sizes.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np

from mrae.data.anchors import check_strides, fit_anchors, markdown_table, yaml_snippet
from mrae.data.sizes import ORIGINAL_PIXELS, RESIZED_PIXELS
from mrae.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ann", help="COCO instances JSON of the training set")
    parser.add_argument("--config", metavar="X.yaml", default=None,
                        help="training config whose model.min_size / max_size / fixed_size resize "
                             "the boxes (of data.train_crop tiles with data.crop_scale: tile), "
                             "instead of --min-size, --max-size, --fixed-size")
    parser.add_argument("--min-size", type=float, default=None,
                        help="training resize: shorter side target (default 300)")
    parser.add_argument("--max-size", type=float, default=None,
                        help="training resize: longer side limit (default 512)")
    parser.add_argument("--fixed-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="resize every image to H x W instead")
    parser.add_argument("--native", action="store_true",
                        help="no resize: the boxes at their images' own scale, whatever the "
                             "images' sizes (tiles seen at 1:1, or a model that keeps every size)")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8, 16],
                        help="feature strides to score the anchors on (default 4 8 16)")
    parser.add_argument("--scales", type=int, default=4, help="size clusters (default 4)")
    parser.add_argument("--ratios", type=int, default=3, help="aspect-ratio clusters (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")


class Resize(NamedTuple):
    """The resize the boxes are fitted at, and where it comes from (for the printed line)."""

    min_size: float
    max_size: float
    fixed_size: tuple[int, int] | None
    tile: tuple[int, int] | None  # data.train_crop under data.crop_scale: tile
    native: bool
    source: str

    def describe(self) -> str:
        """``"min_size 300, max_size 512"``, with the tiles or ``native scale``."""
        if self.native:
            return "none: native scale"
        text = (f"fixed_size {self.fixed_size[0]}x{self.fixed_size[1]}" if self.fixed_size
                else f"min_size {self.min_size:g}, max_size {self.max_size:g}")
        if self.tile is not None:
            text += f", of {self.tile[0]}x{self.tile[1]} tiles (data.crop_scale: tile)"
        return text


def model_resize(args: argparse.Namespace) -> Resize:
    """The resize to apply to the boxes.

    From ``--config`` (the model section of a training config, checked as ``mrae train`` checks
    it, and its tiles when ``data.crop_scale`` is ``tile``), ``--native`` (none), or
    ``--min-size`` / ``--max-size`` / ``--fixed-size`` (defaults 300 / 512); giving two of these
    is a ConfigError, since they could disagree.
    """
    explicit = [f"--{name.replace('_', '-')}" for name in ("min_size", "max_size", "fixed_size")
                if getattr(args, name) is not None]
    native = bool(getattr(args, "native", False))
    if native and (explicit or args.config is not None):
        given = explicit + (["--config"] if args.config is not None else [])
        raise ConfigError(f"--native takes the boxes as they are; drop {', '.join(given)}")
    if native:
        return Resize(0.0, 0.0, None, None, True, "from --native")
    if args.config is not None:
        if explicit:
            raise ConfigError(f"--config {args.config} sets the resize; drop {', '.join(explicit)} "
                              "(or set model.min_size / model.max_size in the config)")
        from mrae.engine.config import load_config

        cfg = load_config(args.config)
        model, data = cfg.model, cfg.data
        fixed = tuple(int(v) for v in model.fixed_size) if model.fixed_size is not None else None
        tile = (tuple(int(v) for v in data.train_crop)
                if data.crop_scale == "tile" and data.train_crop is not None else None)
        return Resize(float(model.min_size), float(model.max_size), fixed, tile, False,  # type: ignore[arg-type]
                      f"from {args.config}")
    min_size = 300.0 if args.min_size is None else args.min_size
    max_size = 512.0 if args.max_size is None else args.max_size
    if min_size <= 0 or max_size <= 0:
        raise ConfigError(f"--min-size and --max-size must be > 0, got {min_size:g}, {max_size:g}")
    fixed = tuple(args.fixed_size) if args.fixed_size is not None else None
    if fixed is not None and min(fixed) <= 0:
        raise ConfigError(f"--fixed-size H W must be > 0, got {list(fixed)}")
    return Resize(min_size, max_size, fixed, None, False,  # type: ignore[arg-type]
                  "from the command line" if explicit else "the default")


def main(args: argparse.Namespace) -> int:
    check_strides(args.strides)
    resize = model_resize(args)
    fit = fit_anchors(args.ann, resize.min_size, resize.max_size, resize.fixed_size, args.strides,
                      args.scales, args.ratios, args.seed, tile=resize.tile, native=resize.native)
    boxes, original = fit.boxes, fit.original
    side = np.median(np.sqrt(boxes[:, 2] * boxes[:, 3]))
    side_original = np.median(np.sqrt(original[:, 2] * original[:, 3]))
    print(yaml_snippet(fit.sizes, fit.ratios))
    print()
    print(f"Sizes in {RESIZED_PIXELS}: {len(boxes)} boxes of {args.ann} after the model's resize "
          f"({resize.describe()}, {resize.source}); sqrt(w*h) median {side:.1f} px ({side_original:.1f} "
          f"{ORIGINAL_PIXELS}). Anchors as torchvision places them: corners rounded to whole "
          f"pixels, centred at k * stride.")
    print()
    print(markdown_table(fit.rows, args.strides))
    print()
    for row in fit.rows:
        print(f"{row['name']}: sizes {list(row['sizes'])}, aspect ratios {list(row['ratios'])}")
    return 0
