"""`mrae subset IN.json --out OUT.json`: the paper's COCO small-object subset (:mod:`mrae.data.subset`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrae.data.sizes import SMALL_AREA
from mrae.data.subset import AREA_RULES, POLICIES, output_paths, subset_table, write_subset
from mrae.errors import ConfigError
from mrae.ownership import check_file, dataset_roots


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file (refused otherwise; never the input)")
    parser.add_argument(
        "input", metavar="IN.json", help="COCO instances JSON (e.g. instances_train2017.json)"
    )
    parser.add_argument(
        "--out", required=True, metavar="OUT.json", help="where to write the subset"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="any-small",
        help="any-small: images with >= 1 small object, larger objects become ignore regions "
        "(\"ignore\": 1 and iscrowd=1); small-only: images whose every object is small "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--area",
        choices=AREA_RULES,
        default="bbox",
        help="bbox: w * h of the box (the paper); segm: COCO's 'area' field (default: %(default)s)",
    )
    parser.add_argument(
        "--max-area",
        type=float,
        default=SMALL_AREA,
        help="an object is small when its area is below this, px^2 (default: %(default)g = 32 x 32)",
    )
    parser.add_argument(
        "--split-val",
        metavar="N",
        default=None,
        help="also split the subset: N images (an integer) or a fraction (0 < N < 1) go to "
        "OUT_val.json, the rest to OUT_train.json",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split (default: %(default)s)"
    )


def main(args: argparse.Namespace) -> int:
    val = parse_split(args.split_val)
    if not args.max_area > 0:
        raise ConfigError(f"--max-area must be > 0 px^2, got {args.max_area}")
    for target in output_paths(args.out, val is not None):  # before the long work: never replace
        if target.resolve() == Path(args.input).resolve():  # the input or an existing file
            raise ConfigError(f"--out {target} is the input file; write the subset elsewhere")
        check_file(target, "subset", inputs=[args.input], overwrite=args.overwrite,
                   datasets=dataset_roots([args.input]))
    subset = write_subset(args.input, args.out, policy=args.policy, area=args.area,
                          max_area=args.max_area, val=val, seed=args.seed)
    rule = "w * h" if args.area == "bbox" else "COCO 'area'"
    print(
        f"input {args.input}: {subset.input_images:,} images, {subset.input_annotations:,} "
        f"annotations; policy {args.policy}, small = {rule} < {args.max_area:g} px^2"
    )
    print()
    print(subset_table(subset.splits, num_input_images=subset.input_images))
    print()
    for name, path in subset.paths.items():
        print(f"wrote {name}: {path}")
    return 0


def parse_split(value: str | None) -> int | float | None:
    """``--split-val``: None, an image count (int >= 1) or a fraction (float in (0, 1))."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"--split-val must be an image count or a fraction in (0, 1), got {value!r}"
        ) from None
    if number.is_integer() and number >= 1 and "." not in value:
        return int(number)
    if 0 < number < 1:
        return number
    raise ConfigError(
        f"--split-val must be an image count >= 1 or a fraction in (0, 1), got {value!r}"
    )
