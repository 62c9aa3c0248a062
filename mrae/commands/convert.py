"""`mrae convert --format F --images DIR --out OUT.json`: labels to a COCO JSON (:mod:`mrae.data.convert`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrae.data.class_map import ClassMap, parse_names, parse_rename
from mrae.data.convert import DIFFICULT, convert, write_coco
from mrae.data.formats import FORMATS
from mrae.data.formats.visdrone import VISDRONE_OTHERS
from mrae.data.formats.voc import VOC_BOXES
from mrae.errors import ConfigError
from mrae.ownership import check_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="the label format")
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
    parser.add_argument("--voc-boxes", choices=VOC_BOXES, default=None,
                        help="voc: 'pixels' (default): Pascal VOC's 1-based inclusive pixel indices; "
                        "'corners': 0-based pixel-edge corners, x = xmin, w = xmax - xmin (HIT-UAV)")
    parser.add_argument("--list", metavar="FILE", default=None,
                        help="convert only the images named in FILE, one per line, relative to "
                        "--images with or without the suffix (VOC's ImageSets/Main/train.txt)")
    parser.add_argument("--classes", metavar="A,B", default=None,
                        help="keep only these classes (names after --map), in this order; boxes "
                        "of the others are dropped")
    parser.add_argument("--map", metavar="OLD=NEW,...", default=None,
                        help="rename classes; classes given one name merge into one category, "
                        "e.g. --map truck=vehicle,bus=vehicle")
    parser.add_argument("--ignore-classes", metavar="A,B", default=None,
                        help="boxes of these classes become ignore regions of every class, "
                        "e.g. --ignore-classes DontCare")


def main(args: argparse.Namespace) -> int:
    if args.difficult is not None and args.format not in ("dota", "voc"):
        raise ConfigError(f"--difficult applies to dota and voc labels, not {args.format}")
    if args.visdrone_others is not None and args.format != "visdrone":
        raise ConfigError(f"--visdrone-others applies to visdrone labels, not {args.format}")
    if args.voc_boxes is not None and args.format != "voc":
        raise ConfigError(f"--voc-boxes applies to voc labels, not {args.format}")
    if args.names is not None and args.format == "visdrone":
        raise ConfigError("--names does not apply to visdrone: its 10 class names are fixed")
    classes = ClassMap(keep=parse_names(args.classes, "--classes"),
                       rename=parse_rename(args.map),
                       ignore=parse_names(args.ignore_classes, "--ignore-classes"))
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
        voc_boxes=args.voc_boxes or "pixels", classes=classes, image_list=args.list, progress=True,
    )  # fmt: skip
    write_coco(data, out)  # checked as the rest of the project will read it
    for line in report.warnings():
        print(f"mrae convert: warning: {line}", file=sys.stderr)
    print(report.summary(data))
    print(f"wrote {out}")
    return 0
