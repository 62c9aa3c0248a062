"""`mrae train --config X.yaml [KEY=VALUE ...]`: train a detector (:mod:`mrae.engine.train`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mrae.engine.config import load_config
from mrae.engine.metrics_log import log_to_stderr
from mrae.engine.train import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/synth/mrae_t2.yaml")
    parser.add_argument(
        "overrides", nargs="*", default=[], metavar="KEY=VALUE",
        help="config overrides after the config, e.g. train.steps=100 model.template=1",
    )
    parser.add_argument("--out", help="run folder (default: runs/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    parser.add_argument(
        "--init-from", metavar="CKPT",
        help="start from these model weights only (e.g. runs/mrae_t1/checkpoints/last.pth)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="start a run in an --out folder holding files mrae did not write (never one that "
        "holds the config or the data)",
    )


def main(args: argparse.Namespace) -> int:
    from mrae.evaluation.coco_metrics import TABLE_HEADER, markdown_row

    log_to_stderr()  # progress, warnings and evaluations as plain lines on stderr
    cfg = load_config(args.config, args.overrides)
    run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    # SIGTERM stops a run as Ctrl-C does (mrae.cli.main): its log says the step and how to resume
    metrics = train(cfg, run_dir, resume=args.resume, init_from=args.init_from,
                    inputs=[args.config], overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone reports
        if metrics:
            print(TABLE_HEADER)
            print(markdown_row(f"{cfg.name} (step {cfg.train.steps})", metrics))
        print(f"run folder: {run_dir}   checkpoints: {run_dir / 'checkpoints'}")
    return 0
