"""`mrae pretrain --config X.yaml`: the proxy pretraining of the ResNet trunk (:mod:`mrae.engine.pretrain`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrae.engine.config import load_config
from mrae.engine.pretrain import SYNTHETIC, cache_path, pretrain, report_file, resolve_pretrained
from mrae.errors import ConfigError
from mrae.ownership import check_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="config whose model.backbone and pretrain section are used, "
                             "e.g. configs/synth/_base.yaml")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. pretrain.steps=2000")
    parser.add_argument("--out", help="write the weights here instead of the cache "
                                      "(refused if the file exists, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    if args.out is None:
        cfg.model.pretrained = SYNTHETIC
        cached = cache_path(cfg).is_file()
        path = resolve_pretrained(cfg)
        report = json.loads(report_file(path).read_text())
        if cached:
            print(f"cached: {path}", file=sys.stderr)
    else:
        path = args.out
        if Path(path).is_dir():
            raise ConfigError(f"--out {path} is a folder; give the path of a .pth file")
        for target in (Path(path), report_file(path)):
            check_file(target, "pretrain", inputs=[args.config], overwrite=args.overwrite)
        report = pretrain(cfg, path)
    print(f"{path}\theld-out accuracy {report['val_accuracy']:.3f}")
    print(f"use it with: model.pretrained={path}  (or model.pretrained={SYNTHETIC} for the cached one)")
    return 0
