"""`mrae synth OUT_DIR`: write the synthetic small-object dataset (:mod:`mrae.data.synth`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mrae.data.synth import LARGE_IMAGES, LARGE_OBJECT_FACTOR, LARGE_SIZE, SPLITS, generate
from mrae.errors import ConfigError, DataError
from mrae.ownership import claim_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="folder to write images/ and annotations/ into")
    parser.add_argument("--images", type=int, default=None,
                        help=f"training images (default 800; with --large {LARGE_IMAGES})")
    parser.add_argument("--val-images", type=int, default=None,
                        help="validation images (default: --images // 4, at least 1)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files")
    parser.add_argument("--width", type=int, default=None, help="image width in px (default 512; --large 2048)")
    parser.add_argument("--height", type=int, default=None,
                        help="image height in px (default 300; --large 1536)")
    parser.add_argument("--large", action="store_true",
                        help=f"large-image variant for sliced inference: {LARGE_SIZE[0]}x{LARGE_SIZE[1]} images, "
                        f"the same objects, {LARGE_OBJECT_FACTOR}x as many per image")
    parser.add_argument("--object-factor", type=int, default=None,
                        help=f"multiply the objects and distractors per image (default 1; --large {LARGE_OBJECT_FACTOR})")
    parser.add_argument("--medium-fraction", type=float, default=0.1,
                        help="share of objects of 32..64 px instead of 4..32 px (default 0.1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a dataset already in OUT_DIR (refused otherwise)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: CPU cores, at most 8; 0: none)")


def main(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; give a folder to write the dataset into")
    existing = [out / name for name in ("images", "annotations") if (out / name).exists()]
    if existing and not args.overwrite:
        raise ConfigError(f"{out} already holds a dataset ({existing[0]}); pass --overwrite to "
                          "replace it or choose another folder")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must be in [0, 2^32), got {args.seed}")
    claim_folder(out, "synth", overwrite=args.overwrite, whole=True, flag="OUT_DIR", create=False)
    images = args.images if args.images is not None else (LARGE_IMAGES if args.large else 800)
    val = args.val_images if args.val_images is not None else max(1, images // 4)
    width = args.width if args.width is not None else (LARGE_SIZE[0] if args.large else 512)
    height = args.height if args.height is not None else (LARGE_SIZE[1] if args.large else 300)
    factor = args.object_factor if args.object_factor is not None else (LARGE_OBJECT_FACTOR if args.large else 1)
    try:
        paths = generate(args.out_dir, train_images=images, val_images=val, seed=args.seed,
                         width=width, height=height, medium_fraction=args.medium_fraction,
                         workers=args.workers, object_factor=factor)
    except OSError as error:  # a full disk, a read-only folder
        raise DataError(f"{out}: cannot write the dataset ({error.strerror or error}); free space "
                        "or choose another folder") from None
    for split in SPLITS:
        with open(paths[f"{split}_annotations"], encoding="utf-8") as f:
            data = json.load(f)
        print(f"{split}: {len(data['images'])} images, {len(data['annotations'])} objects, "
              f"{len(data['categories'])} classes")
        print(f"  images:      {paths[f'{split}_images']}")
        print(f"  annotations: {paths[f'{split}_annotations']}")
    return 0
