"""`mrae demo`: the README's main command, end to end on the embedded synthetic data.

Generates (or reuses) the synthetic small-object dataset, trains MRAE template 2 on ResNet-18 with
``configs/synth/demo.yaml``, evaluates it with COCOeval (the paper's Table 2 columns), and draws
the detections of a few validation images with their level weights.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mrae.errors import ConfigError
from mrae.files import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "configs" / "synth" / "demo.yaml"


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
    from mrae.apps.predict import predict_images
    from mrae.engine.config import load_config, resolve_data
    from mrae.engine.train import train
    from mrae.evaluation.evaluator import TABLE_HEADER, markdown_row

    if not Path(args.config).is_file():
        raise ConfigError(f"{args.config}: demo config not found; pass --config PATH to a YAML config")
    cfg = load_config(args.config, args.overrides)
    if not 0.0 <= args.score_thresh <= 1.0:
        raise ConfigError(f"--score-thresh {args.score_thresh} is not valid; give a score in [0, 1]")
    if args.images < 1:
        raise ConfigError(f"--images {args.images} is not valid; give the number of images to draw (>= 1)")
    run_dir = Path(args.out)
    paths = resolve_data(cfg)
    print(f"data: {paths['train_annotations']} and {paths['val_annotations']}")

    resume = (run_dir / "checkpoints" / "last.pth").is_file()
    if resume:
        print(f"resuming the demo run in {run_dir}")
    metrics = train(cfg, run_dir, resume=resume)

    print()
    print(TABLE_HEADER)
    print(markdown_row(f"MRAE template {cfg.model.template} (demo)", metrics))
    write_json_atomic(run_dir / "demo_metrics.json", metrics)

    val_dir = Path(paths["val_images"])
    images = sorted(p for p in val_dir.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    predictions = run_dir / "predictions"
    predict_images(
        run_dir / "checkpoints" / "best.pth",
        images[: args.images],
        predictions,
        score_thresh=args.score_thresh,
        attention=True,
        overwrite=True,  # the demo's own folder, also when an older version wrote it
    )
    print(f"\ntrained run: {run_dir}   predictions drawn in: {predictions}")
    print(f"tensorboard --logdir {run_dir / 'tb'}")
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    load = os.getloadavg()[0]
    print(f"demo wall time: {minutes} min {seconds:02d} s on {os.cpu_count()} cores "
          f"(load average {load:.2f}; data, pretraining, training, evaluation and drawing included)")
    return 0
