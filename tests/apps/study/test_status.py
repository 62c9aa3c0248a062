"""`mrae study --status`: every row's seeds finished (from the folder or the ledger), diverged,
part-trained or not started, read without writing anything."""

from __future__ import annotations

import json
import os

from mrae import cli
from mrae.apps.study.records import write_record
from mrae.apps.study.spec import run_dir
from mrae.apps.study.status import (
    DIVERGED,
    FINISHED,
    NOT_STARTED,
    PARTIAL,
    status_table,
    study_status,
)
from mrae.files import write_json_atomic


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_each_seed_is_finished_diverged_part_trained_or_not_started(tmp_path, small_study):
    study = small_study(tmp_path)
    c1, t1, mixed = study.rows
    write_json_atomic(run_dir(study, c1, 0) / "final_metrics.json", {"AP": 0.127, "AP50": 0.3,
                                                                             "wall_seconds": 600.0,
                                                                             "train_seconds": 1500.0,
                                                                             "eval_seconds": 300.0})
    write_record(study, c1, 1, {"AP": 0.133})  # a clean clone: the ledger alone has it
    write_json_atomic(run_dir(study, t1, 0) / "final_metrics.json", {"diverged": "at step 3"})
    log = run_dir(study, t1, 1) / "metrics.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"step": 10, "loss": 1.0}) + "\n"
                   + json.dumps({"step": 10, "eval": {"AP": 0.01}}) + "\n"
                   + json.dumps({"step": 12, "loss": 0.9}) + "\n" + '{"step": 13, "lo')  # a torn write
    now = log.stat().st_mtime + 300

    status = study_status(study, now=now)
    states = {(row.name, s.seed): s for row, runs in status for s in runs}
    assert states["single C1", 0].state == FINISHED and round(states["single C1", 0].ap, 1) == 12.7
    assert states["single C1", 1].state == FINISHED and round(states["single C1", 1].ap, 1) == 13.3
    assert states["MRAE template 1", 0].state == DIVERGED
    part = states["MRAE template 1", 1]
    assert (part.state, part.step, part.steps, round(part.age_s)) == (PARTIAL, 12, 20, 300)
    assert {states["mixed", k].state for k in (0, 1)} == {NOT_STARTED}

    table = status_table(status)
    assert "| single C1 | 0: 12.7, 30 min; 1: 13.3 | – | – | – |" in table
    assert "| MRAE template 1 | – | 1: step 12/20, logged 5 min ago | – | 0 |" in table
    assert "| mixed | – | – | 0; 1 | – |" in table
    assert ("2 of 6 runs finished, 1 part-trained (they resume from their last checkpoint), 2 not "
            "started, 1 diverged. Left: about 1.2 run-hours (each run at the mean time of its row's "
            "finished runs, else of its host's") in table  # 30 min: 0.4 of one for template 1, 2 mixed
    # a row with a timed run: its other runs at that run's wall clock, a part-trained one for the rest
    # (a run resumed: its finishing process's wall clock is not the run's time; the summed clocks are)
    write_json_atomic(run_dir(study, mixed, 0) / "final_metrics.json", {"AP": 0.2, "wall_seconds": 7200.0})
    run_dir(study, mixed, 1).mkdir(parents=True)
    (run_dir(study, mixed, 1) / "metrics.jsonl").write_text(json.dumps({"step": 5}) + "\n")
    # mixed seed 1: 3/4 of 2 h; template 1 seed 1: 0.4 of the host's mean (30 min and 2 h)
    assert "Left: about 2.0 run-hours (" in status_table(study_status(study))
    retina = tmp_path / "r.yaml"
    retina.write_text("model: {extractor: single, detector: retinanet, pretrained: synthetic}\n")
    source = study.source.read_text() + "  - {name: RetinaNet C1, config: r.yaml, role: baseline, seeds: 2}\n"
    study.source.write_text(source)
    from mrae.apps.study.spec import load_study

    assert "and 2 runs of a host with no finished run, not guessed" in status_table(
        study_status(load_study(study.source)))


def test_the_time_left_counts_runs_timed_on_another_machine_at_the_speed_now(tmp_path, small_study):
    from mrae.apps.study.status import hours_left

    study = small_study(tmp_path)
    c1 = study.rows[0]
    # seed 0 took 2 h at 50 GFLOP/s (1 thread); the machine now gives 200 at 1 thread
    write_json_atomic(run_dir(study, c1, 0) / "final_metrics.json", {
        "AP": 0.1, "train_seconds": 7200.0, "machine": {"device": "CPU", "gflops": 50.0, "threads": 1}})
    asked = []

    def speed(threads):
        asked.append(threads)
        return 200.0

    status = study_status(study)
    assert hours_left(status)[0] == 5 * 2.0  # the speed now unknown: its own time, for 5 runs
    assert hours_left(status, speed)[0] == 5 * 0.5 and asked == [1]
    table = status_table(status, speed)
    assert "Left: about 2.5 run-hours (" in table  # c1 seed 1 and the 4 other runs at c1's 30 min
    assert "scaled to this machine's speed now at their threads" in table


def test_status_on_the_command_line_writes_nothing(tmp_path, small_study, capsys):
    study = small_study(tmp_path)
    write_json_atomic(run_dir(study, study.rows[0], 0) / "final_metrics.json", {"AP": 0.2})
    before = _tree(tmp_path)
    assert cli.main(["study", str(study.source), "--status"]) == 0
    out = capsys.readouterr().out
    assert "| single C1 | 0: 20.0 | – | 1 | – |" in out and "1 of 6 runs finished" in out
    assert _tree(tmp_path) == before  # no run folder, record, page or lock made
    assert cli.main(["study", str(study.source), "--status", "--quick"]) == 0
    assert "of 3 runs finished" in capsys.readouterr().out  # one seed a row
    assert cli.main(["study", str(study.source), "--status", "--rows", "single C1"]) == 0
    out = capsys.readouterr().out
    assert "| single C1 |" in out and "| mixed |" not in out and "1 of 2 runs finished" in out
    assert cli.main(["study", str(study.source), "--status", "--rows", "zz"]) == 2  # never the others
    assert "unknown row name(s) 'zz'" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_while_the_study_trains_the_time_left_is_not_scaled_by_a_speed_measured_beside_it(
        tmp_path, small_study, capsys, monkeypatch):
    from mrae.apps.study.status import training_now
    from mrae.engine import eta

    study = small_study(tmp_path)
    c1 = study.rows[0]
    write_json_atomic(run_dir(study, c1, 0) / "final_metrics.json", {
        "AP": 0.1, "train_seconds": 3600.0, "machine": {"device": "CPU", "gflops": 200.0, "threads": 1}})
    log = run_dir(study, c1, 1) / "metrics.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"step": 10, "loss": 1.0}) + "\n")
    # the study's own runs load the CPU: measured now, it gives half the speed the runs recorded
    measured = []
    monkeypatch.setattr(eta, "cpu_speed_now", lambda: lambda threads: (measured.append(threads), 100.0)[1])

    status = study_status(study, now=log.stat().st_mtime + 60)
    assert training_now(status).seed == 1  # logged a minute ago: training now
    assert training_now(study_status(study, now=log.stat().st_mtime + 3600)) is None  # an hour: stopped

    assert cli.main(["study", str(study.source), "--status"]) == 0
    out = capsys.readouterr().out
    # seed 1's last 10 of 20 steps at seed 0's own hour, not at two hours (the halved speed), and
    # the 4 runs of the other rows at the host's hour
    assert "Left: about 4.5 run-hours" in out and "not scaled: the study is training now" in out
    assert not measured

    # logged an hour ago: nothing trains, and the speed now is measured
    os.utime(log, (log.stat().st_atime, log.stat().st_mtime - 3600))
    assert cli.main(["study", str(study.source), "--status"]) == 0
    assert "Left: about 9.0 run-hours" in capsys.readouterr().out and measured
