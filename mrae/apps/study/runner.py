"""Running the study's (row, seed) jobs: resumable, one or several at a time.

A run whose ``final_metrics.json`` exists, or that the study's ledger records
(:mod:`mrae.apps.study.records`), is done and skipped; one with ``checkpoints/last.pth`` is
resumed; a run that continues another row's run (``init_from``) starts once that run is done (and
that run is trained again where only its record is left, since its weights are needed). The
shared inputs (the synthetic dataset, the pretrained trunk) are made once in this process before
any worker starts, so that two workers never generate the same files at once.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent import futures
from pathlib import Path

from mrae.apps.study.facts import ATTENTION_ROLES, PAPER_HOST
from mrae.apps.study.pace import Pace, Speed, run_gflops, run_seconds
from mrae.apps.study.records import (
    BadRecord,
    final_metrics,
    finished,
    read_final,
    read_record,
    ready_to_continue,
    remembered,
    run_clocks,
    write_record,
)
from mrae.apps.study.spec import Job, Row, Study, parent_run, row_config, run_dir
from mrae.apps.study.trunks import TRUNK_FILE, check_one_trunk, run_trunk, trunk_setting
from mrae.errors import ConfigError, MraeError
from mrae.files import write_json_atomic
from mrae.parallel import worker_pool


def _diverged(study: Study, job: Job, quick: bool) -> bool:
    final = final_metrics(study, *job, quick)
    return final is not None and "diverged" in final


def _needs_rerun(study: Study, parent: Job, quick: bool) -> bool:
    """A recorded parent whose folder is gone: its weights must be trained again, unless it
    diverged (then the continuing run is reported as not trained, from the record)."""
    if ready_to_continue(study, *parent):
        return False
    return read_record(study, *parent, quick) is not None and not _diverged(study, parent, quick)


def claim_run(study: Study, row: Row, seed: int) -> Path:
    """The run's folder, made (and marked) by the study, or one the study or train made before
    (:func:`mrae.ownership.claim_folder`); a run with a checkpoint is resumed whatever made it."""
    from mrae.engine.run_folder import KEPT_LOGS
    from mrae.ownership import claim_folder

    folder = run_dir(study, row, seed)
    if not (folder / "checkpoints" / "last.pth").is_file():
        claim_folder(folder, "study", accept=("train",), whole=True, flag="study run folder",
                     kept=KEPT_LOGS)
    return folder


def run_row(study: Study, row: Row, seed: int, quick: bool) -> dict:
    """Train (or resume, or skip) one row for one seed and return its final metrics."""
    from mrae.apps.study.measure import complexity, mean_attention, run_machine, trunk_identity
    from mrae.engine.stall import stalled_in_log
    from mrae.engine.train import TrainingDiverged, train
    from mrae.engine.trained import load_trained
    from mrae.ownership import record_whole

    folder = run_dir(study, row, seed)
    done = folder / "final_metrics.json"
    if done.is_file():
        return read_final(done)
    claim_run(study, row, seed)
    cfg = row_config(study, row, seed, quick)
    parent = parent_run(study, row, seed)
    if parent and _diverged(study, parent, quick):
        record = {"diverged": f"not trained: the run it continues ({parent[0].name}, seed {parent[1]}) "
                              "diverged", "train_seconds": 0.0}
        write_json_atomic(done, record)
        write_record(study, row, seed, record, quick)
        return record
    init_from = str(run_dir(study, *parent) / "checkpoints" / "last.pth") if parent else None
    resume = (folder / "checkpoints" / "last.pth").is_file()
    if not resume and not init_from and (trunk := trunk_identity(cfg)) is not None:
        write_json_atomic(folder / TRUNK_FILE, trunk)  # a resume on another machine keeps it
        record_whole(folder, [folder / TRUNK_FILE])  # the study's own file in the run's folder
    started = time.perf_counter()
    try:
        metrics = train(cfg, folder, resume=resume, init_from=None if resume else init_from)
    except TrainingDiverged as error:
        # Reported as diverged, never rerun with other settings (the study's rule).
        wall = time.perf_counter() - started
        record = {"diverged": str(error), "train_seconds": wall, **run_clocks(folder), "wall_seconds": wall,
                  "machine": run_machine(cfg), **run_trunk(study, row, seed)}
        write_json_atomic(done, record)
        write_record(study, row, seed, record, quick)
        print(f"{row.name}, seed {seed}: {error}", flush=True)
        return record
    metrics = dict(metrics)
    metrics.update(run_clocks(folder), wall_seconds=time.perf_counter() - started,
                   machine=run_machine(cfg), **run_trunk(study, row, seed))
    if stalled := stalled_in_log(folder / "metrics.jsonl"):
        metrics["stalled"] = stalled  # e.g. a dead box regression: the page says why AP is 0
    model = load_trained(folder / "checkpoints" / "last.pth").model
    metrics.update(complexity(model, cfg))
    if row.role in ATTENTION_ROLES:
        metrics["attention"] = mean_attention(model, cfg)
    write_json_atomic(done, metrics)
    write_record(study, row, seed, metrics, quick)
    return metrics


def _run_logged(study: Study, row: Row, seed: int, quick: bool, threads: int) -> dict:
    """`run_row` in a worker process: `threads` torch threads, output to the run's `study.log`."""
    import contextlib
    import os

    import torch

    from mrae.engine.run_folder import KEPT_LOGS

    torch.set_num_threads(threads)
    log = claim_run(study, row, seed) / KEPT_LOGS[0]
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never through a link
    with open(os.open(log, flags, 0o666), "a") as handle, contextlib.redirect_stdout(handle), \
            contextlib.redirect_stderr(handle):
        return run_row(study, row, seed, quick)


def prepare_shared(study: Study, jobs: list[Job], quick: bool) -> None:
    """Make the inputs that runs share, once, in this process: the data of every distinct data
    setting (:func:`mrae.engine.config.resolve_data`) and the pretrained trunk of every distinct
    pretraining setting (:func:`mrae.engine.pretrain.resolve_pretrained`)."""
    from mrae.engine.config import resolve_data, to_dict
    from mrae.engine.pretrain import resolve_pretrained

    data_done: set[str] = set()
    trunk_done: set[str] = set()
    for row, seed in jobs:
        cfg = row_config(study, row, seed, quick)
        full = to_dict(cfg)
        data_key = json.dumps(full["data"], sort_keys=True)
        if data_key not in data_done:
            resolve_data(cfg)
            data_done.add(data_key)
        if (trunk_key := trunk_setting(cfg)) not in trunk_done:
            resolve_pretrained(cfg)
            trunk_done.add(trunk_key)


def run_jobs(study: Study, jobs: list[Job], quick: bool, workers: int = 1, mixed_trunks: bool = False) -> None:
    """Run (row, seed) jobs, `workers` at a time, each worker with its share of the CPU threads.

    With one worker the runs go one after another in this process. With several, each run is a
    spawned process whose output goes to ``OUT/<row>/seed<k>/study.log``; a run that continues
    another row's run (``init_from``) starts once that run is done. On two CPU cores two one-thread
    runs train about 1.4x faster in total than one two-thread run after the other. Each record of
    the study's ledger is read once (:func:`mrae.apps.study.records.remembered`). A run that would
    start from another pretrained trunk file than the study's finished runs of the same pretraining
    is refused, unless ``mixed_trunks`` (:func:`check_one_trunk`).
    """
    with remembered(study):
        _run_jobs(study, jobs, quick, workers, mixed_trunks)


def _run_jobs(study: Study, jobs: list[Job], quick: bool, workers: int, mixed_trunks: bool = False) -> None:
    for row, seed in jobs:
        parent = parent_run(study, row, seed)
        if parent and parent not in jobs and not finished(study, *parent, quick):
            raise ConfigError(
                f"row {row.name!r} continues row {parent[0].name!r} (seed {parent[1]}), which has no "
                f"finished run in {study.out}; run that row too (--rows)"
            )
    todo = [job for job in jobs if not finished(study, *job, quick)]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished in {study.out}"
              + (f" or recorded in {study.records}" if study.records and not quick else ""), flush=True)
    # A run that continues a run known only from its record: that run is trained again first.
    for job in list(todo):
        parent = parent_run(study, *job)
        if parent and parent not in todo and _needs_rerun(study, parent, quick):
            print(f"{job[0].name}, seed {job[1]} continues {parent[0].name}, seed {parent[1]}, whose "
                  "weights are gone (only its record is left): training it again first", flush=True)
            todo.insert(todo.index(job), parent)
    if not todo:
        return
    pace = study_pace(study, quick, *speed_now(workers))
    if left := pace.left([row for row, _ in todo], workers):
        print(f"{len(todo)} run{'s' if len(todo) != 1 else ''} to train: {left}", flush=True)
    print("preparing the shared data and pretrained weights ...", flush=True)
    prepare_shared(study, todo, quick)
    check_one_trunk(study, todo, quick, refuse=not mixed_trunks)
    if workers <= 1:
        for i, (row, seed) in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {row.name}, seed {seed}", flush=True)
            metrics = run_row(study, row, seed, quick)
            _add_to_pace(pace, row, metrics)
            if left := pace.left([r for r, _ in todo[i:]]):
                print(f"[{i}/{len(todo)}] {row.name}, seed {seed}: done; {left}", flush=True)
        return
    _run_pool(study, todo, quick, workers, pace=pace)


def speed_now(workers: int) -> tuple[Speed | None, int]:
    """The machine's float32 matmul GFLOP/s now at a number of threads
    (:func:`mrae.engine.eta.cpu_speed_now`; None on a GPU, whose runs' times are their own) and
    one worker's threads: what :class:`~mrae.apps.study.pace.Pace` scales the finished runs'
    times to."""
    import os

    from mrae.engine.eta import cpu_speed_now

    return cpu_speed_now(), max(1, len(os.sched_getaffinity(0)) // max(1, workers))


def study_pace(study: Study, quick: bool = False, speed: Speed | None = None,
               threads: int | None = None) -> Pace:
    """The pace (:class:`mrae.apps.study.pace.Pace`) of the study's runs finished so far, in their
    folders or its ledger, scaled to the machine's ``speed`` now at ``threads`` (:func:`speed_now`):
    a resumed study estimates its time left before it trains."""
    pace = Pace(speed, threads)
    for row in study.rows:
        for seed in range(1 if quick else row.seeds):
            try:
                final = final_metrics(study, row, seed, quick)
            except BadRecord:
                continue  # not a result: sets no pace
            if final is not None:
                _add_to_pace(pace, row, final)
    return pace


def _add_to_pace(pace: Pace, row: Row, metrics: dict) -> None:
    """A finished run sets the pace with its own clocks, unless it diverged (a partial run)."""
    if "diverged" not in metrics and (seconds := run_seconds(metrics)):
        machine = metrics.get("machine") if isinstance(metrics.get("machine"), dict) else {}
        threads = machine.get("threads")
        pace.add(row, seconds, run_gflops(metrics), threads if isinstance(threads, int) and threads > 0 else None)


def _study_key(job: Job) -> tuple[bool, int]:
    return job[0].detector != PAPER_HOST, job[1]


def study_order(jobs: list[Job]) -> list[Job]:
    """The order the study trains ``jobs`` in: the paper's host (Faster R-CNN) first, then the
    other hosts' rows (the host study, issue 18: it never delays the paper's rows); in each, seed by
    seed (after each round every row has as many finished seeds); otherwise the given order."""
    return sorted(jobs, key=_study_key)


def pool_order(jobs: list[Job], pace: Pace | None = None) -> list[Job]:
    """The order a pool starts ``jobs`` in: :func:`study_order`, and within a seed the longest runs
    first, so that they do not finish alone at the end: by the ``pace`` of the study's finished
    runs where it times the row (:meth:`Pace.estimate`; an MRAE run takes 3x a single level's at
    one schedule), else by the schedule's scale. Runs of a row the pace does not time go after
    the timed ones of their round (an unknown length is not guessed long)."""
    def length(job: Job) -> tuple[bool, float]:
        row = job[0]
        estimate = pace.estimate(row) if pace is not None else None
        return (estimate is None, -(estimate if estimate is not None else row.schedule_scale))

    return sorted(jobs, key=lambda job: (*_study_key(job), *length(job)))


def _run_pool(study: Study, jobs: list[Job], quick: bool, workers: int, target=None,
              pace: Pace | None = None) -> None:
    """Train ``jobs`` in ``workers`` spawned processes; ``target`` (default ``_run_logged``) runs
    one; ``pace``: the study's finished runs' times so far (:func:`study_pace`)."""
    import os

    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    pending = pool_order(jobs, pace)
    running, count, total = {}, 0, len(jobs)
    pace, started = pace or Pace(), {}
    with worker_pool(workers) as pool:
        try:
            while pending or running:
                for job in list(pending):
                    if len(running) >= workers:
                        break
                    parent = parent_run(study, *job)
                    if parent is None or ready_to_continue(study, *parent) or _diverged(study, parent, quick):
                        pending.remove(job)
                        count += 1
                        log = run_dir(study, *job) / "study.log"
                        print(f"[{count}/{total}] {job[0].name}, seed {job[1]}: started (log: {log})", flush=True)
                        running[pool.submit(target or _run_logged, study, *job, quick, threads)] = (count, job)
                        started[job] = time.perf_counter()
                if not running:  # a parent that is neither done nor queued: refused above
                    raise ConfigError("the study cannot go on: every pending run waits for a missing run")
                # Wake every second: a Ctrl-C that the kernel hands to another thread (the pool's
                # manager) runs its handler only when this thread runs Python again.
                done, _ = futures.wait(running, timeout=1.0, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    index, (row, seed) = running.pop(future)
                    try:
                        metrics = future.result()  # a failed run stops the study; finished runs stay done
                    except futures.process.BrokenProcessPool:
                        raise MraeError(
                            f"a study worker died (killed, or out of memory) while training {row.name}, "
                            f"seed {seed}; finished runs are kept: run the same command again to resume"
                        ) from None
                    result = ("diverged" if "diverged" in metrics
                              else f"AP {100 * metrics['AP']:.1f}, AP50 {100 * metrics['AP50']:.1f}")
                    seconds = time.perf_counter() - started.pop((row, seed))
                    _add_to_pace(pace, row, metrics)
                    left = pace.left([r for r, _ in pending] + [r for _, (r, _) in running.values()], workers)
                    print(f"[{index}/{total}] {row.name}, seed {seed}: {result} ({seconds / 60:.1f} min)"
                          + (f"; {left}" if left else ""), flush=True)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under `mrae study`
            # Leaving the pool would wait for the runs in progress (20 minutes and more).
            for process in multiprocessing.active_children():
                process.terminate()
            # `mrae.cli.main` prints it after "mrae study: interrupted"
            raise KeyboardInterrupt("the runs in progress continue from their last checkpoint when "
                                    "the same command runs again") from None
