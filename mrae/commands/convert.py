"""`mrae convert --format F --images DIR --out OUT.json`: labels to a COCO JSON (:mod:`mrae.data.convert`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrae.data.convert import DIFFICULT, FORMATS, convert, write_coco
from mrae.data.formats.visdrone import VISDRONE_OTHERS
from mrae.errors import ConfigError
from mrae.ownership import check_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="the label format")
    parser.add_argument("--images", required=True, metavar="DIR",
                        help="folder of the images (searched recursively)")
    parser.add_argument("--labels", metavar="DIR", default=None,
                        help="folder of the label files, laid out as the images "
                        "(default: the images folder)")
    parser.add_argument("--out", required=True, metavar="OUT.json", help="the COCO JSON to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out (refused otherwise)")
    parser.add_argument("--names", metavar="FILE", default=None,
                        help="class names: one per line (classes.txt, obj.names) or a YAML with "
                        "'names:'. yolo: looked for beside the labels when not given; dota, voc: "
                        "fixes the categories' order (default: sorted names found)")
    parser.add_argument("--difficult", choices=DIFFICULT, default=None,
                        help="dota, voc: 'flag' keeps difficult objects as objects with "
                        "\"difficult\": 1 (default); 'ignore' makes them ignore regions")
    parser.add_argument("--visdrone-others", choices=VISDRONE_OTHERS, default=None,
                        help="visdrone: category 11 (others) as ignore regions (default), "
                        "dropped, or an 11th category")


def main(args: argparse.Namespace) -> int:
    if args.difficult is not None and args.format not in ("dota", "voc"):
        raise ConfigError(f"--difficult applies to dota and voc labels, not {args.format}")
    if args.visdrone_others is not None and args.format != "visdrone":
        raise ConfigError(f"--visdrone-others applies to visdrone labels, not {args.format}")
    if args.names is not None and args.format == "visdrone":
        raise ConfigError("--names does not apply to visdrone: its 10 class names are fixed")
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .json file path")
    inputs = [args.images, args.labels, args.names]  # before the long work
    check_file(out, "convert", inputs=inputs, overwrite=args.overwrite,
               datasets=[Path(p) for p in (args.images, args.labels) if p is not None])
    folder = next(p for p in out.absolute().parents if p.exists())
    if not folder.is_dir():
        raise ConfigError(f"--out {out}: {folder} is a file, not a folder")
    data, report = convert(
        args.format, args.images, args.labels, names=args.names,
        difficult=args.difficult or "flag", others=args.visdrone_others or "ignore",
        progress=True,
    )  # fmt: skip
    write_coco(data, out)  # checked as the rest of the project will read it
    for line in report.warnings():
        print(f"mrae convert: warning: {line}", file=sys.stderr)
    print(report.summary(data))
    print(f"wrote {out}")
    return 0
