"""benchmarks/slicing.py: argument parsing only (the measurement itself is not run in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mrae.errors import ConfigError

_spec = importlib.util.spec_from_file_location("bench_slicing", Path(__file__).parents[1] / "benchmarks" / "slicing.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_defaults_and_flags():
    args, options = bench.parse_args(["--checkpoint", "c.pth", "--data", "d"])
    assert (options.tile_h, options.tile_w, options.overlap, options.merge) == (300, 512, 0.2, "nms")
    assert args.max_images == 25
    _, options = bench.parse_args(["--checkpoint", "c.pth", "--data", "d", "--slice", "256x256",
                                   "--overlap", "0.3", "--merge", "greedy", "--full-pass"])
    assert (options.tile_h, options.overlap, options.merge, options.full_pass) == (256, 0.3, "greedy", True)


@pytest.mark.parametrize("flags", [["--overlap", "1"], ["--slice", "0x5"], ["--max-images", "0"]])
def test_bad_values_are_config_errors(flags):
    with pytest.raises(ConfigError):
        bench.parse_args(["--checkpoint", "c.pth", "--data", "d", *flags])
