"""`mrae predict --checkpoint CKPT IMAGES_OR_DIR... --out DIR`: detect, draw, save (:mod:`mrae.apps.predict`).

Exit code 1 when an image could not be read (the others' results are written), 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrae.apps.predict import MANIFEST, predict_images
from mrae.commands.slicing_flags import add_slice_arguments, slice_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (.pth) from mrae train, or an .onnx file of mrae export")
    parser.add_argument("inputs", nargs="+", metavar="IMAGES_OR_DIR", help="image files or folders of images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--score-thresh", type=float, default=0.5, help="keep detections scoring at least this (default: 0.5)"
    )
    parser.add_argument(
        "--attention", action="store_true", help="also save the level weights (and spatial weight maps)"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="write into an --out folder that holds other files too (same names are replaced)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_slice_arguments(parser)


def main(args: argparse.Namespace) -> int:
    slicing = slice_options(args)  # checked before anything is read or loaded
    results, failed = predict_images(
        args.checkpoint,
        args.inputs,
        args.out,
        score_thresh=args.score_thresh,
        attention=args.attention,
        device=args.device,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        slicing=slicing,
    )
    print(f"{len(results)} detections with score >= {args.score_thresh} written to {args.out}")
    if failed:
        print(
            f"mrae predict: {len(failed)} image(s) could not be read and were skipped "
            f"(listed in {Path(args.out) / MANIFEST})",
            file=sys.stderr,
        )
        return 1
    return 0
