"""`mrae study STUDY.yaml`: train the study's runs (resumable), then write ``results.json``, the
results page and its plots beside it, and the README's headline block (:mod:`mrae.apps.study`;
the pipeline is :mod:`mrae.apps.study.pipeline`).

``--status`` prints where the study stands (:mod:`mrae.apps.study.status`) and writes nothing.
``--render-only`` renders the page, the plots and the README block again from the results JSON
without training or reading any run (the claims in the JSON are judged again from its rows first,
so that a page always shows the verdict rules of the code that renders it, and the study file's
title and ``about`` are taken again: words, not measurements). ``--rows`` names rows of the study
file in every mode; an unknown name is refused.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study file, e.g. configs/synth/study.yaml")
    parser.add_argument("--out", help="folder of the runs (default: the study file's `out`)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, the study file's `quick` overrides (tiny data, few steps)")
    parser.add_argument("--report", help="results page to write, with results.json beside it "
                        "(default: the study file's `report`, else docs/results.md; with --quick: OUT/results.md)")
    parser.add_argument("--rows", nargs="+", metavar="NAME",
                        help="run only these rows (with --status: show only these); a name the study "
                        "file lacks is refused in every mode")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--status", action="store_true",
                       help="train and write nothing: print each row's seeds finished (AP), "
                       "part-trained (last step) and not started; safe while the study trains")
    modes.add_argument("--report-only", action="store_true",
                       help="train nothing: summarize the finished runs and write the results")
    modes.add_argument("--render-only", action="store_true",
                       help="train and read nothing: render the page, the plots and the README block "
                       "again from the results JSON beside the page (its claims judged again, the study file's "
                       "title and about taken again)")
    parser.add_argument("--readme",
                        help="also write the headline table between this file's study markers "
                        "(default: the study file's `readme`, if any; never with --quick)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a results page, JSON or plot that mrae study did not write "
                        "(never the study file, a row's config or the README)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runs trained at once, each with 1/N of the CPU threads (default 1; "
                        "2 on a 2-core machine trains the study about 1.4x faster)")
    parser.add_argument("--mixed-trunks", action="store_true",
                        help="start runs even from another pretrained trunk file than the study's "
                        "finished runs began from (pretraining on another CPU gives another trunk; "
                        "refused without this)")


def _command(args: argparse.Namespace) -> str:
    """The command that reproduces this study (as written on the page)."""
    return " ".join(
        ["mrae study", shlex.quote(args.study)]
        + (["--quick"] if args.quick else [])
        + ([f"--out {shlex.quote(args.out)}"] if args.out else [])
        + ([f"--report {shlex.quote(args.report)}"] if args.report else [])
        + (["--rows", *map(shlex.quote, args.rows)] if args.rows else [])
        + ([f"--jobs {args.jobs}"] if args.jobs > 1 else [])
        + (["--mixed-trunks"] if args.mixed_trunks else [])
    )


def main(args: argparse.Namespace) -> int:
    from mrae.apps.study import pipeline
    from mrae.apps.study.report import page_files
    from mrae.apps.study.spec import load_study
    from mrae.apps.study.tables import markdown_table

    study = load_study(args.study, args.out)
    options = pipeline.Options(
        quick=args.quick, rows=args.rows, jobs=args.jobs, mixed_trunks=args.mixed_trunks,
        overwrite=args.overwrite, report=Path(args.report) if args.report else None,
        readme=Path(args.readme) if args.readme else None, command=_command(args))
    if args.status:
        print(pipeline.status(study, options))
        return 0
    if args.render_only:
        report = pipeline.render(study, options)
        print(f"results page: {report} (rendered from {page_files(report).results})")
        return 0
    results = pipeline.run_study(study, options, train=not args.report_only)
    report = pipeline.report_path(study, options)
    print(markdown_table(results["rows"]))
    print(f"\nresults: {page_files(report).results}\nresults page: {report}")
    return 0
