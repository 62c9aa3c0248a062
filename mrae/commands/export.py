"""`mrae export --checkpoint CK --out model.onnx`: the whole detector (resize, normalise, heads,
post-processing) as ONNX, one image of any size; :mod:`mrae.apps.export` does the work."""

from __future__ import annotations

import argparse

from mrae.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (.pth) to export")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--example-size", default=None, metavar="HxW",
                        help="size of the traced example image (default: the model's resize); "
                             "the exported model takes any size")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def main(args: argparse.Namespace) -> int:
    from mrae.apps.export import export_checkpoint
    from mrae.evaluation.slicing import parse_tile_size

    size = None
    if args.example_size is not None:
        try:
            size = parse_tile_size(args.example_size)
        except ConfigError:
            raise ConfigError(f"--example-size must be HxW in px, e.g. 300x512, got {args.example_size!r}") from None
    out = export_checkpoint(args.checkpoint, args.out, overwrite=args.overwrite, example_size=size)
    print(f"wrote {out}: input image float32 [3, H, W] in [0, 1]; outputs boxes [D, 4] xyxy px, "
          "labels [D], scores [D]")
    return 0
