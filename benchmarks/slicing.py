"""AP and time per image with and without sliced inference (docs/slicing.md).

    python benchmarks/slicing.py --checkpoint CKPT --data DATA [--max-images 25]
        [--slice 300x512 --overlap 0.2 --merge nms|greedy --full-pass ...]

DATA is a folder written by ``mrae synth DATA --large`` (its ``images/val`` and
``annotations/instances_val.json`` are read). Prints a markdown table: one row for the whole image
(the model's own resize), one for the sliced inference (all the slicing flags of ``mrae eval``).
AP columns are pycocotools' COCOeval x100 in original-image pixels; ms is CPU/GPU time per image
(every tile and the full pass counted).

Each call also merges its rows (keyed by their label) into ``--results`` (default
``docs/slicing_benchmark.json``) with the command, the machine and its load, and renders
``docs/slicing_benchmark.md`` from that file; ``--render-only`` renders the page again without
measuring anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from mrae.commands.slicing_flags import add_slice_arguments, slice_options
from mrae.errors import ConfigError
from mrae.evaluation.slicing import SliceOptions

COLUMNS = ("AP", "AP50", "APs", "APm", "AR100", "ms_per_image")
TITLE = "Sliced inference on the large-image benchmark: measured"
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "slicing_benchmark.json"


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, SliceOptions]:
    """The arguments and the slicing options (``--slice`` defaults to 300x512: the model's input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint (.pth) from mrae train")
    parser.add_argument("--data", help="folder written by mrae synth DATA --large")
    parser.add_argument("--max-images", type=int, default=25, help="validation images (default 25)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--model", help="a name for the model, put before each row's label "
                        "(default: none; give one when comparing models on one page)")
    parser.add_argument("--results", default=str(RESULTS),
                        help="results JSON the rows are merged into; the page is rendered beside it "
                        "with the suffix .md (default docs/slicing_benchmark.json)")
    parser.add_argument("--title", help="the page's title, kept in the results file (default: "
                        "the sliced-inference benchmark's)")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: render the page again from --results")
    add_slice_arguments(parser)
    args = parser.parse_args(argv)
    if not args.render_only and (args.checkpoint is None or args.data is None):
        raise ConfigError("--checkpoint and --data are needed (or --render-only)")
    if args.slice is None:
        args.slice = "300x512"
    if args.max_images < 1:
        raise ConfigError(f"--max-images must be >= 1, got {args.max_images}")
    options = slice_options(args)
    assert options is not None
    return args, options


def render(results: dict, source: str = RESULTS.name) -> str:
    """The markdown page of the results file: one table of every measured row, its commands."""
    from mrae.evaluation.coco_metrics import markdown_row, table_header

    rows = results["rows"]
    lines = [
        f"# {results.get('title', TITLE)}",
        "",
        "Written by `python benchmarks/slicing.py` (each call merges its rows into "
        f"[{source}]({source}), which this page is rendered from; "
        "`--render-only` renders it again). No number here is typed by hand. AP columns: "
        "COCOeval x100 in original-image pixels; ms: time per image, every tile and the full "
        "pass counted. How slicing works: [slicing.md](slicing.md).",
        "",
        table_header(COLUMNS, name="inference"),
        *(markdown_row(label, row["metrics"], COLUMNS) for label, row in rows.items()),
        "",
        "Each row, its command and where it ran:",
        "",
    ]
    for label, row in rows.items():
        lines.append(f"- {label}: `{row['command']}` ({row['images']} images, checkpoint "
                     f"`{row['checkpoint']}`; {row['date']}, {row['machine']})")
    return "\n".join(lines) + "\n"


def write_results(path: Path, rows: dict[str, dict], title: str | None = None) -> dict:
    """Merge ``rows`` (label -> row) into the results file at ``path`` and render its page."""
    from mrae.files import write_json_atomic, write_text_atomic

    results = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    results["rows"].update(rows)
    if title:
        results["title"] = title
    write_json_atomic(path, results)
    write_text_atomic(path.with_suffix(".md"), render(results, path.name))
    return results


def main(argv: Sequence[str] | None = None) -> None:
    from mrae.data.coco import CocoDetection
    from mrae.engine.trained import load_trained
    from mrae.evaluation.coco_metrics import markdown_row, table_header
    from mrae.evaluation.evaluator import evaluate_model
    from mrae.evaluation.slicing import describe

    args, options = parse_args(argv)
    results_path = Path(args.results)
    if args.render_only:
        if not results_path.is_file():
            raise ConfigError(f"{results_path}: no results to render; measure first")
        from mrae.files import write_json_atomic, write_text_atomic

        results = json.loads(results_path.read_text())
        if args.title:
            results["title"] = args.title
            write_json_atomic(results_path, results)
        write_text_atomic(results_path.with_suffix(".md"), render(results, results_path.name))
        print(f"rendered {results_path.with_suffix('.md')}")
        return
    data = Path(args.data)
    dataset = CocoDetection(data / "images" / "val", data / "annotations" / "instances_val.json", train=False)
    model = load_trained(args.checkpoint, device="cpu").model
    command = shlex.join(["python", "benchmarks/slicing.py", *(sys.argv[1:] if argv is None else argv)])
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, load {load:.2f} at start"
    rows: dict[str, dict] = {}
    for name, slicing in (("whole image", None), (f"sliced ({describe(options)})", options)):
        name = f"{args.model}: {name}" if args.model else name
        metrics, _ = evaluate_model(model, dataset, device=args.device, max_images=args.max_images,
                                    progress=False, slicing=slicing)
        rows[name] = {
            "metrics": {c: metrics.get(c) for c in COLUMNS}, "command": command,
            "images": min(args.max_images, len(dataset)), "checkpoint": str(args.checkpoint),
            "date": datetime.date.today().isoformat(), "machine": machine,
        }
    print(table_header(COLUMNS, name="inference"))
    print("\n".join(markdown_row(name, row["metrics"], COLUMNS) for name, row in rows.items()))
    write_results(results_path, rows, args.title)
    print(f"results: {results_path}, page: {results_path.with_suffix('.md')}")


if __name__ == "__main__":
    try:
        main()
    except ConfigError as error:
        sys.exit(f"benchmarks/slicing.py: error: {error}")
