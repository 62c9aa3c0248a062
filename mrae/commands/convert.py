"""`mrae convert --format F --images DIR --out OUT.json`: labels to a COCO JSON (:mod:`mrae.data.convert`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

from mrae.data.class_map import ClassMap, parse_names, parse_rename
from mrae.data.convert import DIFFICULT, convert, write_coco
from mrae.data.formats import FORMATS
from mrae.data.formats.visdrone import VISDRONE_OTHERS
from mrae.data.formats.voc import VOC_BOXES
from mrae.errors import ConfigError
from mrae.ownership import check_file


class FormatOption(NamedTuple):
    """An option that some formats only read; refused with another ``--format``."""

    choices: tuple[str, ...]
    formats: tuple[str, ...]  # the formats that read it
    default: str  # what :func:`mrae.data.convert.convert` is given when the option is not
    help: str


#: The options of some formats only, in the help's order: flag -> its definition.
FORMAT_OPTIONS: dict[str, FormatOption] = {
    "--difficult": FormatOption(
        DIFFICULT, ("dota", "voc"), "flag",
        "dota, voc: 'flag' keeps difficult objects as objects with \"difficult\": 1 (default); "
        "'ignore' makes them ignore regions"),
    "--visdrone-others": FormatOption(
        VISDRONE_OTHERS, ("visdrone",), "ignore",
        "visdrone: category 11 (others) as ignore regions (default), dropped, or an 11th category"),
    "--voc-boxes": FormatOption(
        VOC_BOXES, ("voc",), "pixels",
        "voc: 'pixels' (default): Pascal VOC's 1-based inclusive pixel indices; 'corners': "
        "0-based pixel-edge corners, x = xmin, w = xmax - xmin (HIT-UAV)"),
}
#: The options that choose images and classes (None when not given), in the help's order:
#: flag -> (metavar, help).
SELECTION_OPTIONS: dict[str, tuple[str, str]] = {
    "--list": ("FILE", "convert only the images named in FILE, one per line, relative to --images "
                       "with or without the suffix (VOC's ImageSets/Main/train.txt)"),
    "--classes": ("A,B", "keep only these classes (names after --map), in this order; boxes of "
                         "the others are dropped"),
    "--map": ("OLD=NEW,...", "rename classes; classes given one name merge into one category, "
                             "e.g. --map truck=vehicle,bus=vehicle"),
    "--ignore-classes": ("A,B", "boxes of these classes become ignore regions of every class, "
                                "e.g. --ignore-classes DontCare"),
}


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
    for flag, option in FORMAT_OPTIONS.items():
        parser.add_argument(flag, choices=option.choices, default=None, help=option.help)
    for flag, (metavar, text) in SELECTION_OPTIONS.items():
        parser.add_argument(flag, metavar=metavar, default=None, help=text)


def _format_option(args: argparse.Namespace, flag: str) -> str:
    """The value of a format option: as given, or its default; ConfigError when ``--format``
    does not read it."""
    option = FORMAT_OPTIONS[flag]
    value = getattr(args, flag[2:].replace("-", "_"))
    if value is None:
        return option.default
    if args.format not in option.formats:
        raise ConfigError(f"{flag} applies to {' and '.join(option.formats)} labels, not "
                          f"{args.format}")
    return value


def main(args: argparse.Namespace) -> int:
    given = {flag: _format_option(args, flag) for flag in FORMAT_OPTIONS}
    if args.names is not None and args.format == "visdrone":
        raise ConfigError("--names does not apply to visdrone: its 10 class names are fixed")
    classes = ClassMap(keep=parse_names(args.classes, "--classes"),
                       rename=parse_rename(args.map),
                       ignore=parse_names(args.ignore_classes, "--ignore-classes"))
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a .json file path")
    inputs = [args.images, args.labels, args.names, args.list]  # before the long work
    check_file(out, "convert", inputs=inputs, overwrite=args.overwrite,
               datasets=[Path(p) for p in (args.images, args.labels) if p is not None])
    folder = next(p for p in out.absolute().parents if p.exists())
    if not folder.is_dir():
        raise ConfigError(f"--out {out}: {folder} is a file, not a folder")
    data, report = convert(
        args.format, args.images, args.labels, names=args.names,
        difficult=given["--difficult"], others=given["--visdrone-others"],
        voc_boxes=given["--voc-boxes"], classes=classes, image_list=args.list, progress=True,
    )  # fmt: skip
    write_coco(data, out)  # checked as the rest of the project will read it
    for line in report.warnings():
        print(f"mrae convert: warning: {line}", file=sys.stderr)
    print(report.summary(data))
    print(f"wrote {out}")
    return 0
