"""`mrae study STUDY.yaml`: train the study's runs (resumable), then write ``results.json``, the
results page and its plots beside it, and the README's headline block (:mod:`mrae.apps.study`).

``--status`` prints where the study stands (:mod:`mrae.apps.study.status`) and writes nothing.
``--render-only`` renders the page, the plots and the README block again from the results JSON
without training or reading any run (the claims in the JSON are judged again from its rows first,
so that a page always shows the verdict rules of the code that renders it, and the study file's
title and ``about`` are taken again: words, not measurements).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mrae.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study file, e.g. configs/synth/study.yaml")
    parser.add_argument("--out", help="folder of the runs (default: the study file's `out`)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, the study file's `quick` overrides (tiny data, few steps)")
    parser.add_argument("--report", help="results page to write, with results.json beside it "
                        "(default: the study file's `report`, else docs/results.md; with --quick: OUT/results.md)")
    parser.add_argument("--rows", nargs="+", metavar="NAME", help="run only these rows")
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


def output_paths(report: Path) -> list[Path]:
    """What the study writes beside its page: the page, its two plots and the results JSON."""
    return [report, report.with_name(report.stem + "_convergence.png"),
            report.with_name(report.stem + "_attention.png"), report.with_suffix(".json")]


def check_outputs(study, report: Path, readme: Path | None, args: argparse.Namespace) -> list[Path]:
    """The study's outputs, checked before anything runs (:func:`mrae.ownership.check_file`):
    new, the study's own, or ``--overwrite``; never the study file, a row's config or the README."""
    from mrae.ownership import check_file

    if report.suffix.lower() == ".json":
        raise ConfigError(f"--report {report}: the results JSON goes beside the page; give a .md path")
    # --render-only rewrites the results JSON too, where the claims or the prose changed (rejudge).
    outputs = output_paths(report)
    compared = [study.compare.results, study.compare.readme] if study.compare else []
    inputs = [args.study, readme, *compared, *(row.config for row in study.rows)]
    for path in outputs:
        check_file(path, "study", inputs=inputs, overwrite=args.overwrite, flag="--report")
    return outputs


def main(args: argparse.Namespace) -> int:
    from mrae.apps.study.report import rejudge, render_report
    from mrae.apps.study.spec import load_study
    from mrae.apps.study.tables import markdown_table
    from mrae.ownership import record_files

    study = load_study(args.study, args.out)
    if args.status:
        from mrae.apps.study.status import status_table, study_status
        from mrae.engine.eta import cpu_speed_now

        print(f"{args.study} ({study.out}" + (f", records in {study.records}" if study.records and not args.quick
                                              else "") + ")")
        print(status_table(study_status(study, args.quick), speed=cpu_speed_now()))  # measures when asked
        return 0
    report = Path(args.report) if args.report else study.out / "results.md" if args.quick else study.report
    results_path = report.with_suffix(".json")
    readme = None if args.quick else (Path(args.readme) if args.readme else study.readme)
    # the README whose block compares this study's verdicts with another's (never with --quick)
    compare_readme = None if args.quick or study.compare is None else study.compare.readme
    if args.render_only and not results_path.is_file():
        raise ConfigError(f"{results_path}: no results to render; run the study first")
    if args.render_only:
        outputs = check_outputs(study, report, readme, args)
        rejudge(results_path, {"title": study.title, "about": study.about})
        render_report(results_path, report, readme, compare_readme)
        record_files([p for p in outputs if p.is_file()], "study")
        print(f"results page: {report} (rendered from {results_path})")
        return 0

    from mrae.apps.study.measure import measure_speed
    from mrae.apps.study.records import backfill
    from mrae.apps.study.runner import run_jobs, study_order
    from mrae.apps.study.summary import build_results, commit, summarize
    from mrae.files import write_json_atomic

    commit_id = commit()  # before the study writes its report and plots over tracked files
    seeds = 1 if args.quick else None
    selected = [r for r in study.rows if not args.rows or r.name in args.rows]
    if args.rows and len(selected) != len(set(args.rows)):
        valid = ", ".join(r.name for r in study.rows)
        raise ConfigError(f"--rows: unknown row name(s); valid: {valid}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    outputs = check_outputs(study, report, readme, args)  # before any run trains
    if not args.report_only:
        # Seed by seed: after each round every row has as many seeds (a partial --report-only
        # can judge the claims once two rounds are done); the paper's host's rows first.
        rounds = max(seeds or row.seeds for row in selected)
        jobs = study_order([(row, seed) for seed in range(rounds) for row in selected
                            if seed < (seeds or row.seeds)])
        run_jobs(study, jobs, args.quick, args.jobs, args.mixed_trunks)
    all_jobs = [(row, seed) for row in study.rows for seed in range(seeds or row.seeds)]
    if written := backfill(study, all_jobs, args.quick):
        print(f"recorded {written} finished run(s) in {study.records}", flush=True)
    summary = summarize(study, seeds, args.quick)
    if not summary:
        raise ConfigError(f"{study.out}: no finished run to report; run the study first")
    print("measuring inference time of every row, one after another ...", flush=True)
    ms_machine = measure_speed(study, summary, args.quick, images=2 if args.quick else 20)
    results = build_results(study, summary, _command(args), commit_id, args.quick, ms_machine)
    write_json_atomic(results_path, results)
    render_report(results_path, report, readme, compare_readme)
    record_files([p for p in outputs if p.is_file()], "study")  # its own: replaced next time
    print(markdown_table(results["rows"]))
    print(f"\nresults: {results_path}\nresults page: {report}")
    return 0
