"""The study from its file to its page: where it stands (:func:`status`), the page rendered again
from its results JSON (:func:`render`), and the whole pipeline (:func:`run_study`: train the runs,
record them, summarize, time the rows, judge the claims, write the results JSON and render the
page). ``mrae study`` (:mod:`mrae.commands.study`) parses its options into :class:`Options` and
calls one of these; the files they write are named once, in
:func:`mrae.apps.study.report.page_files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mrae.apps.study.report import page_files, rejudge, render_report
from mrae.apps.study.spec import Row, Study
from mrae.errors import ConfigError


@dataclass(frozen=True)
class Options:
    """How one ``mrae study`` call runs: ``quick`` (one seed, the study file's quick overrides),
    ``rows`` (train only these rows; None: all), ``jobs`` (runs at once), ``mixed_trunks`` (start
    runs from another trunk file than the finished runs'), ``overwrite`` (replace outputs the study
    did not write), ``report`` and ``readme`` (None: the study file's), ``command`` (the command
    line, for the page)."""

    quick: bool = False
    rows: list[str] | None = None
    jobs: int = 1
    mixed_trunks: bool = False
    overwrite: bool = False
    report: Path | None = None
    readme: Path | None = None
    command: str = ""


def select_rows(study: Study, names: list[str] | None) -> list[Row]:
    """The rows named (all for None), in the study file's order; an unknown name is a one-line
    :class:`ConfigError` naming the valid ones."""
    if not names:
        return list(study.rows)
    known = {row.name for row in study.rows}
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise ConfigError(f"--rows: unknown row name(s) {', '.join(map(repr, unknown))} in "
                          f"{study.source}; valid: {', '.join(repr(r.name) for r in study.rows)}")
    return [row for row in study.rows if row.name in names]


def report_path(study: Study, options: Options) -> Path:
    """The results page: ``--report``, else ``OUT/results.md`` with ``--quick``, else the study
    file's ``report``."""
    if options.report is not None:
        return options.report
    return study.out / "results.md" if options.quick else study.report


def readme_path(study: Study, options: Options) -> Path | None:
    """The README whose headline block the study rewrites (never with ``--quick``)."""
    return None if options.quick else options.readme or study.readme


def _compare_readme(study: Study, options: Options) -> Path | None:
    """The README whose block compares this study's verdicts with another's (never with --quick)."""
    return None if options.quick or study.compare is None else study.compare.readme


def check_outputs(study: Study, options: Options) -> list[Path]:
    """The study's outputs (:func:`~mrae.apps.study.report.page_files`), checked before anything
    runs (:func:`mrae.ownership.check_file`): new, the study's own, or ``overwrite``; never the
    study file, a row's config, the README or the results it compares with."""
    from mrae.ownership import check_file, dataset_roots

    report = report_path(study, options)
    if report.suffix.lower() == ".json":
        raise ConfigError(f"--report {report}: the results JSON goes beside the page; give a .md path")
    # --render-only rewrites the results JSON too, where the claims or the prose changed (rejudge).
    outputs = page_files(report).all()
    compared = [study.compare.results, study.compare.readme] if study.compare else []
    data = _row_data(study)
    inputs = [study.source, readme_path(study, options), *compared, *(row.config for row in study.rows), *data]
    for path in outputs:
        check_file(path, "study", inputs=inputs, overwrite=options.overwrite, flag="--report",
                   datasets=dataset_roots(data))
    return outputs


def _row_data(study: Study) -> list[Path]:
    """The dataset paths the rows' configs name that exist here (images and annotations, or the
    synthetic dataset's folder): the study's pages never go among them."""
    from mrae.apps.study.spec import row_config
    from mrae.engine.config import synthetic_dir

    found: list[Path] = []
    for row in study.rows:
        cfg = row_config(study, row)
        d = cfg.data
        paths = [synthetic_dir(cfg)] if d.train_images is None else [
            Path(d[k]) for k in ("train_images", "train_annotations", "val_images", "val_annotations")
            if d[k] is not None]
        found += [p for p in paths if p.exists() and p not in found]
    return found


def status(study: Study, options: Options) -> str:
    """Where the study stands (:mod:`mrae.apps.study.status`): the rows of ``options.rows`` (all
    for None) with their seeds and the time left, as text; writes nothing."""
    from dataclasses import replace

    from mrae.apps.study.status import status_table, study_status
    from mrae.engine.eta import cpu_speed_now

    rows = select_rows(study, options.rows)
    records = f", records in {study.records}" if study.records and not options.quick else ""
    shown = replace(study, rows=rows)
    return (f"{study.source} ({study.out}{records})\n"
            + status_table(study_status(shown, options.quick), speed=cpu_speed_now()))  # measures when asked


def render(study: Study, options: Options) -> Path:
    """The page, its plots and the README blocks rendered again from the results JSON beside the
    page, its claims judged again and the study file's title and ``about`` taken again (words,
    not measurements); trains and reads no run. Returns the page."""
    from mrae.ownership import record_files

    select_rows(study, options.rows)  # a name the study file lacks is a mistake here too
    report = report_path(study, options)
    results_path = page_files(report).results
    if not results_path.is_file():
        raise ConfigError(f"{results_path}: no results to render; run the study first")
    outputs = check_outputs(study, options)
    rejudge(results_path, {"title": study.title, "about": study.about})
    render_report(results_path, report, readme_path(study, options), _compare_readme(study, options))
    record_files([p for p in outputs if p.is_file()], "study")
    return report


def run_study(study: Study, options: Options, train: bool = True) -> dict:
    """Train the runs of ``options.rows`` still to train (none with ``train`` False: the report
    alone), record every finished run, summarize, time each row's inference, judge the claims,
    write the results JSON and render the page; returns the results."""
    from mrae.apps.study.measure import measure_speed
    from mrae.apps.study.records import backfill, bad_records
    from mrae.apps.study.runner import run_jobs, study_order
    from mrae.apps.study.summary import build_results, commit, summarize
    from mrae.files import write_json_atomic
    from mrae.ownership import record_files

    if options.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {options.jobs}")
    commit_id = commit()  # before the study writes its report and plots over tracked files
    seeds = 1 if options.quick else None
    selected = select_rows(study, options.rows)
    outputs = check_outputs(study, options)  # before any run trains
    report = report_path(study, options)
    all_jobs = [(row, seed) for row in study.rows for seed in range(seeds or row.seeds)]
    bad_ones = bad_records(study, all_jobs, options.quick)
    for row, _, bad in bad_ones:
        if train and row in selected:
            raise bad  # never trained over: the user restores it or moves it aside
        print(f"warning: {bad}", flush=True)  # the report leaves it out
    if train:
        # Seed by seed: after each round every row has as many seeds (a partial --report-only
        # can judge the claims once two rounds are done); the paper's host's rows first.
        rounds = max(seeds or row.seeds for row in selected)
        jobs = study_order([(row, seed) for seed in range(rounds) for row in selected
                            if seed < (seeds or row.seeds)])
        run_jobs(study, jobs, options.quick, options.jobs, options.mixed_trunks)
    if written := backfill(study, all_jobs, options.quick):
        print(f"recorded {written} finished run(s) in {study.records}", flush=True)
    summary = summarize(study, seeds, options.quick)
    if not summary and bad_ones:
        raise bad_ones[0][2]  # nothing else to report: the bad record is the error
    if not summary:
        raise ConfigError(f"{study.out}: no finished run to report; run the study first")
    print("measuring inference time of every row, one after another ...", flush=True)
    ms_machine = measure_speed(study, summary, options.quick, images=2 if options.quick else 20)
    results = build_results(study, summary, options.command, commit_id, options.quick, ms_machine)
    write_json_atomic(page_files(report).results, results)
    render_report(page_files(report).results, report, readme_path(study, options),
                  _compare_readme(study, options))
    record_files([p for p in outputs if p.is_file()], "study")  # its own: replaced next time
    return results
