"""benchmarks/trunk_pairs.py: the same (row, seed) from two records folders, paired."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_trunk_pairs", Path(__file__).parents[1] / "benchmarks" / "trunk_pairs.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _record(folder: Path, row: str, seed: int, ap: float | None, trunk: dict | None = None) -> None:
    final = {"AP": ap} if ap is not None else {"diverged": "at step 3"}
    if trunk:
        final["trunk"] = trunk
    path = folder / row.lower().replace(" ", "_") / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "row": row, "seed": seed, "config": {}, "final": final}))


def test_only_runs_in_both_folders_are_paired(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    trunk = {"pretrained": "dataset", "sha256": "d9acc869ca872da6", "held_out_accuracy": 0.8689}
    _record(old, "single C1", 0, 0.117)
    _record(old, "single C1", 1, 0.129)
    _record(old, "single C2", 0, 0.127)  # not in `new`
    _record(old, "sum", 0, None)  # diverged: left out
    _record(new, "single C1", 0, 0.100, trunk)
    _record(new, "single C1", 1, 0.121, trunk)
    _record(new, "sum", 0, 0.114, trunk)
    assert bench.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| single C1 | 0 | 11.7 | not recorded | 10.0 | d9acc869ca872da6 (0.869) | -1.7 |" in out
    assert "| single C1 | 1 | 12.9 | not recorded | 12.1 | d9acc869ca872da6 (0.869) | -0.8 |" in out
    assert "single C2" not in out and "| sum |" not in out
    # mean -1.25, sd 0.636, t(0.975, 1) = 12.71: half-width 5.72
    assert "Mean difference over 2 pair(s): -1.25 AP, 95% t-interval -6.97 to +4.47" in out


def test_folders_without_a_common_run_are_refused_in_one_line(tmp_path, capsys):
    _record(tmp_path / "a", "single C1", 0, 0.1)
    _record(tmp_path / "b", "single C1", 1, 0.1)
    assert bench.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == "trunk_pairs: the two folders share no (row, seed)\n"
    assert bench.main([str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "no such folder of study records" in capsys.readouterr().err
