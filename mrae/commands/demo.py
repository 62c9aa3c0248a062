"""`mrae demo`: synthetic data, train MRAE template 2, evaluate, draw (:mod:`mrae.apps.demo`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mrae.apps.demo import DEMO_CONFIG, run_demo
from mrae.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="demo config (default: %(default)s)")
    parser.add_argument("--out", default="runs/demo", help="run folder (default: %(default)s)")
    parser.add_argument("--images", type=int, default=4, help="validation images to draw (default: 4)")
    parser.add_argument("--score-thresh", type=float, default=0.3,
                        help="draw detections scoring at least this (default: %(default)s)")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="config overrides as key.sub=value, e.g. train.steps=50"
    )


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    from mrae.engine.config import load_config

    if not Path(args.config).is_file():
        raise ConfigError(f"{args.config}: demo config not found; pass --config PATH to a YAML config")
    cfg = load_config(args.config, args.overrides)
    if not 0.0 <= args.score_thresh <= 1.0:
        raise ConfigError(f"--score-thresh {args.score_thresh} is not valid; give a score in [0, 1]")
    if args.images < 1:
        raise ConfigError(f"--images {args.images} is not valid; give the number of images to draw (>= 1)")
    run_demo(cfg, args.out, images=args.images, score_thresh=args.score_thresh)
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    load = os.getloadavg()[0]
    print(f"demo wall time: {minutes} min {seconds:02d} s on {os.cpu_count()} cores "
          f"(load average {load:.2f}; data, pretraining, training, evaluation and drawing included)")
    return 0
