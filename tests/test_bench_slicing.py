"""benchmarks/slicing.py: its arguments and its results file and page (the measurement itself is
not run in tests)."""

from __future__ import annotations

import importlib.util
import json
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


def test_checkpoint_and_data_are_needed_unless_render_only():
    with pytest.raises(ConfigError, match="--checkpoint and --data"):
        bench.parse_args(["--data", "d"])
    args, _ = bench.parse_args(["--render-only"])
    assert args.render_only


def _row(ap: float, command: str) -> dict:
    metrics = {"AP": ap, "AP50": 0.5, "APs": 0.1, "APm": float("nan"), "AR100": 0.4, "ms_per_image": 812.25}
    return {"metrics": metrics, "command": command, "images": 25, "checkpoint": "best.pth",
            "date": "2026-11-26", "machine": "x86_64, 2 cores, load 0.50 at start"}


def test_results_merge_by_label_and_the_page_is_rendered_from_them(tmp_path):
    results = tmp_path / "slicing_benchmark.json"
    bench.write_results(results, {"whole image": _row(0.1, "a"), "sliced (x)": _row(0.2, "a")})
    bench.write_results(results, {"whole image": _row(0.3, "b"), "sliced (y)": _row(0.4, "b")})
    rows = json.loads(results.read_text())["rows"]
    assert list(rows) == ["whole image", "sliced (x)", "sliced (y)"]
    assert rows["whole image"]["metrics"]["AP"] == 0.3  # the newer measurement of a label wins
    page = results.with_suffix(".md").read_text()
    assert "| whole image | 30.0 | 50.0 | 10.0 | - | 40.0 | 812.2 |" in page
    assert "| sliced (y) | 40.0 |" in page and "- sliced (x): `a` (25 images" in page

    results.with_suffix(".md").unlink()
    bench.main(["--render-only", "--results", str(results)])
    assert results.with_suffix(".md").read_text() == page
    assert page.startswith(f"# {bench.TITLE}\n")
    bench.main(["--render-only", "--results", str(results), "--title", "Sliced training"])
    assert results.with_suffix(".md").read_text().startswith("# Sliced training\n")
    assert json.loads(results.read_text())["title"] == "Sliced training"
