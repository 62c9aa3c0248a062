"""The runner without training: shared inputs made once before any run, finished runs skipped,
missing parents refused, a diverged parent's child not trained, atomic marker files."""

import json
from pathlib import Path

import pytest

from mrae.apps.study import runner
from mrae.apps.study.spec import run_dir
from mrae.engine.config import PretrainConfig
from mrae.errors import ConfigError, MraeError
from mrae.files import write_json_atomic


def _jobs(study):
    return [(row, seed) for row in study.rows for seed in range(row.seeds)]


def test_shared_data_and_pretrained_trunks_are_made_once_per_setting(tmp_path, monkeypatch, small_study):
    import mrae.engine.config
    import mrae.engine.pretrain

    data, trunks = [], []
    monkeypatch.setattr(mrae.engine.config, "resolve_data", lambda cfg: data.append(cfg.data.synthetic.seed))
    monkeypatch.setattr(mrae.engine.pretrain, "resolve_pretrained",
                        lambda cfg: trunks.append(cfg.pretrain.steps))
    study = small_study(tmp_path, records=False)
    runner.prepare_shared(study, _jobs(study), quick=False)
    assert sorted(data) == [0, 5]  # two data settings among six runs
    assert sorted(trunks) == [7, PretrainConfig().steps]  # two pretraining settings


def test_the_shared_inputs_are_made_before_any_run_and_finished_runs_are_skipped(tmp_path, monkeypatch, small_study,
                                                                                  capsys):
    study = small_study(tmp_path, records=False)
    events = []
    monkeypatch.setattr(runner, "prepare_shared",
                        lambda study, jobs, quick: events.append(("prepare", [(r.name, s) for r, s in jobs])))

    def run_row(study, row, seed, quick):
        events.append(("run", row.name, seed))
        write_json_atomic(run_dir(study, row, seed) / "final_metrics.json", {"AP": 0.1, "train_seconds": 60.0})
        return {"AP": 0.1, "train_seconds": 60.0}

    monkeypatch.setattr(runner, "run_row", run_row)
    write_json_atomic(run_dir(study, study.rows[0], 0) / "final_metrics.json", {"AP": 0.1})
    runner.run_jobs(study, _jobs(study), quick=False, workers=1)
    assert events[0] == ("prepare", [("single C1", 1), ("MRAE template 1", 0), ("MRAE template 1", 1),
                                     ("mixed", 0), ("mixed", 1)])
    assert events[1:] == [("run", "single C1", 1), ("run", "MRAE template 1", 0),
                          ("run", "MRAE template 1", 1), ("run", "mixed", 0), ("run", "mixed", 1)]
    # After each run but the last, the time left at the finished runs' pace (every row here is
    # Faster R-CNN; the run finished before it started has no clocks, so sets none).
    done = [line for line in capsys.readouterr().out.splitlines() if ": done; about " in line]
    assert [line.split(":")[0] for line in done] == ["[1/5] single C1, seed 1", "[2/5] MRAE template 1, seed 0",
                                                     "[3/5] MRAE template 1, seed 1", "[4/5] mixed, seed 0"]
    assert done[-1].endswith("about 1 min left for 1 run (at the pace of the study's finished runs)")
    events.clear()
    runner.run_jobs(study, _jobs(study), quick=False, workers=1)
    assert events == []  # everything finished: nothing prepared, nothing run


def test_a_run_whose_parent_has_no_finished_run_is_refused(tmp_path, small_study):
    study = small_study(tmp_path, records=False)
    with pytest.raises(ConfigError, match="continues row 'MRAE template 1' \\(seed 0\\)"):
        runner.run_jobs(study, [(study.rows[2], 0)], quick=False)


def test_a_run_that_continues_a_diverged_run_is_recorded_as_diverged_untrained(tmp_path, monkeypatch, small_study):
    import mrae.engine.train

    def no_training(*args, **kwargs):
        raise AssertionError("must not train")

    monkeypatch.setattr(mrae.engine.train, "train", no_training)
    study = small_study(tmp_path, records=False)
    write_json_atomic(run_dir(study, study.rows[1], 1) / "final_metrics.json",
                      {"diverged": "training diverged at step 3", "train_seconds": 1.0})
    record = runner.run_row(study, study.rows[2], 1, quick=False)
    assert "not trained: the run it continues (MRAE template 1, seed 1) diverged" in record["diverged"]
    written = run_dir(study, study.rows[2], 1) / "final_metrics.json"
    assert json.loads(written.read_text()) == record


def test_marker_files_are_written_atomically(tmp_path):
    path = tmp_path / "run" / "final_metrics.json"
    write_json_atomic(path, {"AP": 0.5})
    assert json.loads(path.read_text()) == {"AP": 0.5}
    with pytest.raises(TypeError):
        write_json_atomic(path, {"AP": object()})  # fails before anything is written
    assert json.loads(path.read_text()) == {"AP": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["final_metrics.json"]


def _worker_killed(*args):
    import os

    os._exit(9)  # what SIGKILL or the OOM killer does to a worker


def test_a_killed_worker_is_one_clear_error(tmp_path, small_study):
    study = small_study(tmp_path, records=False)
    jobs = [(study.rows[0], 0)]
    with pytest.raises(MraeError, match="a study worker died .* single C1, seed 0; .* resume"):
        runner._run_pool(study, jobs, quick=True, workers=1, target=_worker_killed)


def test_the_pool_runs_seed_by_seed_with_the_long_runs_first_in_each_round():
    from mrae.apps.study.spec import Row

    a, b = Row("a", Path("a.yaml"), "mrae", 3), Row("long", Path("l.yaml"), "mrae_long", 3, schedule_scale=2)
    jobs = [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1), (b, 2)]
    order = [(row.name, seed) for row, seed in runner.pool_order(jobs)]
    assert order == [("long", 0), ("a", 0), ("long", 1), ("a", 1), ("long", 2), ("a", 2)]



def test_the_pool_starts_the_run_its_finished_runs_time_longest_first_in_each_round():
    from mrae.apps.study.pace import Pace
    from mrae.apps.study.spec import Row

    # one schedule, but MRAE's finished runs took 6x a single level's: MRAE starts first
    single, mrae = Row("single", Path("s.yaml"), "baseline", 2), Row("mrae", Path("m.yaml"), "mrae", 2)
    other = Row("other host", Path("o.yaml"), "baseline", 2, detector="fcos")
    pace = Pace()
    pace.add(single, 300.0)
    pace.add(mrae, 1800.0)
    jobs = [(single, 0), (mrae, 0), (single, 1), (mrae, 1), (other, 0)]
    order = [(row.name, seed) for row, seed in runner.pool_order(jobs, pace)]
    assert order == [("mrae", 0), ("single", 0), ("mrae", 1), ("single", 1), ("other host", 0)]
    # without a pace: the given order within a round
    assert [(r.name, s) for r, s in runner.pool_order(jobs)][:2] == [("single", 0), ("mrae", 0)]

def _worker_done(study, row, seed, quick, threads):
    """A run that finishes at once (what _run_logged returns)."""
    return {"AP": 0.1 * (seed + 1), "AP50": 0.2, "train_seconds": 1.0}


def test_each_finished_run_says_how_long_the_rest_takes(tmp_path, small_study, capsys):
    study = small_study(tmp_path, records=False)
    single = study.rows[0]
    runner._run_pool(study, [(single, 0), (single, 1)], quick=True, workers=2, target=_worker_done)
    lines = [line for line in capsys.readouterr().out.splitlines() if ": AP " in line]
    assert len(lines) == 2
    # The first to finish: the other is still training, timed by this row's run.
    assert "; about 1 min left for 1 run, 2 at a time (at the pace of the study's finished runs)" in lines[0]
    assert lines[1].endswith(" min)")  # nothing left


def test_a_resumed_study_says_its_time_left_from_the_runs_already_finished(tmp_path, small_study, capsys,
                                                                            monkeypatch):
    """A run resumed over sittings counts whole (its own clocks); a diverged run sets no pace."""
    from mrae.files import write_json_atomic

    study = small_study(tmp_path, records=False)
    single = study.rows[0]
    write_json_atomic(runner.run_dir(study, single, 0) / "final_metrics.json",
                      {"AP": 0.1, "train_seconds": 3000.0, "eval_seconds": 600.0, "wall_seconds": 60.0})
    write_json_atomic(runner.run_dir(study, study.rows[1], 0) / "final_metrics.json",
                      {"diverged": "at step 3", "train_seconds": 5.0})
    pace = runner.study_pace(study)
    assert pace.estimate(single) == 3600.0 and pace.estimate(study.rows[1]) == 3600.0  # the host's
    assert pace.left([single, single, single], workers=2) == (
        "about 1.5 h left for 3 runs, 2 at a time (at the pace of the study's finished runs)")
    # said before the study trains anything (here: nothing trains)
    monkeypatch.setattr(runner, "prepare_shared", lambda *args: None)
    monkeypatch.setattr(runner, "_run_pool", lambda *args, **kwargs: None)
    runner._run_jobs(study, [(single, 1), (study.rows[1], 1)], quick=False, workers=2)
    assert ("2 runs to train: about 1.0 h left for 2 runs, 2 at a time (at the pace of the study's "
            "finished runs)") in capsys.readouterr().out


def _worker_sleeps(study, row, seed, *args):
    """A run that says it started (a file in its run folder), then trains for two minutes (far
    longer than the test waits)."""
    import time

    folder = runner.run_dir(study, row, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "started").touch()
    time.sleep(120)


def test_ctrl_c_stops_the_runs_in_progress_instead_of_waiting_for_them(tmp_path, small_study):
    import multiprocessing
    import signal
    import threading
    import time

    study = small_study(tmp_path, records=False)
    jobs = [(study.rows[0], 0), (study.rows[0], 1)]
    # Ctrl-C (as `kill -INT` or SIGTERM under `mrae study`) once both workers have started (on a
    # loaded machine spawning them takes seconds: a fixed delay could fire before).
    started = [runner.run_dir(study, row, seed) / "started" for row, seed in jobs]
    stop = threading.Event()

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in started) and time.monotonic() < deadline:
            if stop.wait(0.1):  # the pool returned first: no signal into the rest of the tests
                return
        # to this thread, not the main one: the kernel hands a Ctrl-C to any thread that does not
        # block it, and the main thread must notice it still
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    # Python's own Ctrl-C handler, also where the suite runs as a background job (a shell starts
    # those with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=interrupt_once_started, daemon=True)
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt, match="continue from their last checkpoint"):
            runner._run_pool(study, jobs, quick=True, workers=2, target=_worker_sleeps)
    finally:
        stop.set()
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < 100  # the workers' runs would take 120 s
    assert multiprocessing.active_children() == []
