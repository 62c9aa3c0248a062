"""What the pretrained trunk alone changes: the same runs (row and seed) begun from two trunk files.

    python benchmarks/trunk_pairs.py docs/results_hituav_trunk0895_runs docs/results_hituav_runs

Reads two folders of study records (``<row>/seed<k>.json``, as ``mrae study`` writes them) and
prints a markdown table of every (row, seed) present in both: the AP (x100) from each, the trunk
each began from (``final.trunk``: sha256 prefix and held-out accuracy, "not recorded" for records
written before the study kept it) and the difference; then the mean difference over the pairs
with its 95% t-interval. Pretraining repeats on one machine but not across CPUs (docs/hituav.md),
so two machines give two trunks of one recipe; this measures how far apart they put a study's rows.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from scipy import stats


def read_records(folder: Path) -> dict[tuple[str, int], dict]:
    """``{(row, seed): final metrics}`` of the records under ``folder`` (diverged runs left out)."""
    records = {}
    for path in sorted(folder.glob("*/seed*.json")):
        record = json.loads(path.read_text())
        final = record.get("final", {})
        if isinstance(final.get("AP"), int | float):
            records[(str(record["row"]), int(record["seed"]))] = final
    return records


def trunk_name(final: dict) -> str:
    trunk = final.get("trunk")
    if not isinstance(trunk, dict):
        return "not recorded"
    accuracy = trunk.get("held_out_accuracy")
    return f"{trunk.get('sha256')}" + (f" ({accuracy:.3f})" if isinstance(accuracy, int | float) else "")


def pairs_table(first: dict[tuple[str, int], dict], second: dict[tuple[str, int], dict]) -> str:
    """The markdown table and the mean-difference line; raises ValueError without a common run."""
    common = sorted(set(first) & set(second))
    if not common:
        raise ValueError("the two folders share no (row, seed)")
    lines = ["| row | seed | AP, first | trunk, first | AP, second | trunk, second | second - first |",
             "|---|---|---|---|---|---|---|"]
    differences = []
    for row, seed in common:
        a, b = 100 * first[(row, seed)]["AP"], 100 * second[(row, seed)]["AP"]
        differences.append(b - a)
        lines.append(f"| {row} | {seed} | {a:.1f} | {trunk_name(first[(row, seed)])} | {b:.1f} | "
                     f"{trunk_name(second[(row, seed)])} | {b - a:+.1f} |")
    mean = statistics.mean(differences)
    summary = f"\nMean difference over {len(differences)} pair(s): {mean:+.2f} AP"
    if len(differences) > 1:
        half = stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
        summary += f", 95% t-interval {mean - half:+.2f} to {mean + half:+.2f}"
    return "\n".join(lines) + summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="records folder, e.g. docs/results_hituav_trunk0895_runs")
    parser.add_argument("second", type=Path, help="records folder, e.g. docs/results_hituav_runs")
    args = parser.parse_args(argv)
    for folder in (args.first, args.second):
        if not folder.is_dir():
            print(f"trunk_pairs: {folder}: no such folder of study records", file=sys.stderr)
            return 2
    try:
        print(pairs_table(read_records(args.first), read_records(args.second)))
    except ValueError as error:
        print(f"trunk_pairs: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
