"""The sliced-inference flags that `mrae predict` and `mrae eval` share (not a command).

``--slice HxW --overlap F --merge nms|greedy --match-metric ios|iou --match-threshold T
--full-pass --drop-cut --slice-batch N`` become a :class:`mrae.evaluation.slicing.SliceOptions`.
"""

from __future__ import annotations

import argparse
import math

from mrae.errors import ConfigError
from mrae.evaluation.slicing import SliceOptions, parse_tile_size


def add_slice_arguments(parser: argparse.ArgumentParser) -> None:
    """``--slice HxW`` and its options. Values are checked by :func:`slice_options` (one-line
    ConfigError), not by argparse (whose errors print the usage too)."""
    group = parser.add_argument_group("sliced inference (large images; see docs/slicing.md)")
    group.add_argument("--slice", metavar="HxW", help="detect on overlapping tiles of HxW native px")
    group.add_argument("--overlap", metavar="F", help="fraction of a tile shared with its neighbour, 0 <= F < 1 "
                       "(default 0.2)")
    group.add_argument("--merge", metavar="nms|greedy", help="merge duplicates across tiles by NMS or greedy "
                       "merging into the union (default nms)")
    group.add_argument("--match-metric", metavar="ios|iou", help="greedy merging: intersection over the "
                       "smaller box or IoU (default ios)")
    group.add_argument("--match-threshold", metavar="T", help="boxes matching above T are duplicates "
                       "(default 0.5)")
    group.add_argument("--full-pass", action="store_true", help="also detect on the whole image (large "
                       "objects); its boxes join the merge")
    group.add_argument("--drop-cut", action="store_true", help="drop tile boxes touching an inner tile border")
    group.add_argument("--slice-batch", metavar="N", help="tiles per forward pass (default 4)")


_DEPENDENT = ("overlap", "merge", "match_metric", "match_threshold", "slice_batch")


def slice_options(args: argparse.Namespace) -> SliceOptions | None:
    """The :class:`SliceOptions` of parsed ``args``; None without ``--slice``.

    Raises ConfigError (one line) for a bad value, or a slicing option given without ``--slice``.
    """
    if getattr(args, "slice", None) is None:
        given = [n for n in _DEPENDENT if getattr(args, n, None) is not None]
        given += [n for n in ("full_pass", "drop_cut") if getattr(args, n, False)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"{flag} needs --slice HxW (sliced inference); add --slice or drop {flag}")
        return None
    tile_h, tile_w = parse_tile_size(args.slice)
    return SliceOptions(
        tile_h=tile_h,
        tile_w=tile_w,
        overlap=_number("--overlap", args.overlap, 0.2),
        merge=args.merge if args.merge is not None else "nms",
        match_metric=args.match_metric if args.match_metric is not None else "ios",
        match_threshold=_number("--match-threshold", args.match_threshold, 0.5),
        full_pass=bool(args.full_pass),
        drop_cut=bool(args.drop_cut),
        batch_size=_count("--slice-batch", args.slice_batch, 4),
    )


def _number(flag: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {text!r}")
    return value


def _count(flag: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"{flag} must be a positive integer, got {text!r}")
    return value
