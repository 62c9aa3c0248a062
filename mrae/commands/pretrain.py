"""`mrae pretrain --config X.yaml [--annotations ANN.json --images DIR]`: the offline pretraining of
the ResNet trunk (:mod:`mrae.engine.pretrain`), on synthetic crops or on a dataset's own boxes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrae.engine.config import load_config
from mrae.engine.pretrain import (
    DATASET,
    SYNTHETIC,
    cache_path,
    check_source,
    pretrain,
    report_file,
    resolve_pretrained,
)
from mrae.errors import ConfigError
from mrae.ownership import check_file, dataset_roots


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="config whose model.backbone and pretrain section are used, "
                             "e.g. configs/synth/_base.yaml")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. pretrain.steps=2000")
    parser.add_argument("--annotations", metavar="ANN.json", default=None,
                        help="pretrain on crops of this COCO dataset's labelled boxes (each class) "
                             "and background instead of synthetic scenes: the training split")
    parser.add_argument("--images", metavar="DIR", default=None,
                        help="the images folder of --annotations")
    parser.add_argument("--out", help="write the weights here instead of the cache "
                                      "(refused if the file exists, unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def main(args: argparse.Namespace) -> int:
    if (args.annotations is None) != (args.images is None):
        raise ConfigError("--annotations and --images go together: give the COCO JSON and its "
                          "images folder")
    overrides = list(args.overrides)
    if args.annotations is not None:
        for option, path, kind in (("--annotations", args.annotations, "file"),
                                   ("--images", args.images, "folder")):
            exists = Path(path).is_file() if kind == "file" else Path(path).is_dir()
            if not exists:
                raise ConfigError(f"{option} {path}: {kind} not found; check the path")
        overrides += [f"pretrain.annotations={args.annotations}", f"pretrain.images={args.images}"]
    cfg = load_config(args.config, overrides)
    # --annotations, or a config that starts from model.pretrained: dataset; else synthetic crops
    source = DATASET if args.annotations is not None or cfg.model.pretrained == DATASET \
        else SYNTHETIC
    if args.out is None:
        cfg.model.pretrained = source
        cached = cache_path(cfg).is_file()
        path = resolve_pretrained(cfg)
        report = json.loads(report_file(path).read_text())
        if cached:
            print(f"cached: {path}", file=sys.stderr)
    else:
        path = args.out
        if Path(path).is_dir():
            raise ConfigError(f"--out {path} is a folder; give the path of a .pth file")
        cfg.model.pretrained = source
        check_source(cfg)
        inputs = [args.config, *([cfg.pretrain.annotations, cfg.pretrain.images] if source == DATASET else [])]
        for target in (Path(path), report_file(path)):
            check_file(target, "pretrain", inputs=inputs, overwrite=args.overwrite,
                       datasets=dataset_roots(inputs[1:]))
        report = pretrain(cfg, path)
    print(f"{path}\theld-out accuracy {report['val_accuracy']:.3f}")
    print(f"use it with: model.pretrained={path}  (or model.pretrained={source} for the cached one)")
    return 0
