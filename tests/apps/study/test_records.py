"""The study's ledger of finished runs: a clean clone without run folders resumes and reports the
recorded runs, a record of another budget is ignored, a recorded parent whose weights are gone is
trained again before the run that continues it, and a --quick study records nothing."""

import json
import shutil

import pytest

from mrae.apps.study import records, runner
from mrae.apps.study.records import backfill, read_record, record_path, write_record
from mrae.apps.study.spec import run_dir
from mrae.apps.study.summary import summarize
from mrae.files import write_json_atomic


def _jobs(study):
    return [(row, seed) for row in study.rows for seed in range(row.seeds)]


def _finish(study, row, seed, ap: float, weights: bool = True) -> None:
    """A run folder as training leaves it: the evaluation log, the final metrics, the weights."""
    folder = run_dir(study, row, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text(
        json.dumps({"step": 10, "eval": {"AP": ap / 2}}) + "\n" + json.dumps({"step": 20, "eval": {"AP": ap}}) + "\n")
    if weights:
        (folder / "checkpoints").mkdir(exist_ok=True)
        (folder / "checkpoints" / "last.pth").write_bytes(b"weights")
    write_json_atomic(folder / "final_metrics.json", {"AP": ap, "AP50": (1 + ap) / 2, "train_seconds": 1.0})


def test_a_clean_clone_reports_the_recorded_runs_as_the_run_folders_did(tmp_path, small_study):
    study = small_study(tmp_path)
    for (row, seed), ap in zip(_jobs(study), (0.1, 0.2, 0.3, 0.4, 0.5, 0.6), strict=True):
        _finish(study, row, seed, ap)
    before = summarize(study)
    assert backfill(study, _jobs(study)) == 6
    assert backfill(study, _jobs(study)) == 0  # each run recorded once
    record = json.loads(record_path(study, study.rows[0], 1).read_text())
    assert record["final"]["AP"] == 0.2 and record["curve"] == [[10, 0.1], [20, 0.2]]
    assert record["config"]["train"]["steps"] == 20 and record["config"]["train"]["seed"] == 1

    shutil.rmtree(study.out)  # the run folders do not outlive the machine; the records are committed
    after = summarize(study)
    assert after == before
    assert all(records.finished(study, row, seed) for row, seed in _jobs(study))


def test_a_record_of_another_budget_is_ignored(tmp_path, small_study):
    study = small_study(tmp_path)
    _finish(study, study.rows[0], 0, 0.1)
    write_record(study, study.rows[0], 0, {"AP": 0.1})
    assert read_record(study, study.rows[0], 0) is not None
    shutil.rmtree(study.out)
    longer = small_study(tmp_path, steps=40)  # the same rows and records folder, another budget
    assert read_record(longer, longer.rows[0], 0) is None
    assert not records.finished(longer, longer.rows[0], 0)
    record_path(study, study.rows[0], 0).write_text("{not json")  # damaged: named, never "no record"
    with pytest.raises(records.BadRecord, match="not readable JSON"):
        read_record(study, study.rows[0], 0)


def test_a_recorded_parent_whose_weights_are_gone_is_trained_again_first(tmp_path, monkeypatch, small_study):
    study = small_study(tmp_path)
    t1 = study.rows[1]
    _finish(study, t1, 0, 0.3)
    write_record(study, t1, 0, {"AP": 0.3})
    shutil.rmtree(run_dir(study, t1, 0))
    events = []
    monkeypatch.setattr(runner, "prepare_shared", lambda study, jobs, quick: None)

    def run_row(study, row, seed, quick):
        events.append((row.name, seed))
        _finish(study, row, seed, 0.3)
        return {"AP": 0.3}

    monkeypatch.setattr(runner, "run_row", run_row)
    runner.run_jobs(study, [(study.rows[2], 0)], quick=False, workers=1)
    assert events == [("MRAE template 1", 0), ("mixed", 0)]


def test_a_run_that_continues_a_recorded_diverged_run_needs_no_weights(tmp_path, monkeypatch, small_study):
    import mrae.engine.train

    monkeypatch.setattr(mrae.engine.train, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    study = small_study(tmp_path)
    write_record(study, study.rows[1], 1, {"diverged": "training diverged at step 3"})
    record = runner.run_row(study, study.rows[2], 1, quick=False)
    assert "not trained: the run it continues (MRAE template 1, seed 1) diverged" in record["diverged"]
    assert read_record(study, study.rows[2], 1)["final"] == record


def test_a_quick_study_records_nothing(tmp_path, small_study):
    study = small_study(tmp_path)
    _finish(study, study.rows[0], 0, 0.1)
    assert record_path(study, study.rows[0], 0, quick=True) is None
    assert backfill(study, _jobs(study), quick=True) == 0
    assert not (tmp_path / "records").exists()


def test_a_setting_added_to_the_code_since_the_record_at_its_default_keeps_the_record(tmp_path, small_study):
    study = small_study(tmp_path)
    _finish(study, study.rows[0], 0, 0.1)
    path = write_record(study, study.rows[0], 0, {"AP": 0.1})
    record = json.loads(path.read_text())
    del record["config"]["train"]["keep_last"]  # as if written before train.keep_last existed
    path.write_text(json.dumps(record))
    shutil.rmtree(study.out)
    assert read_record(study, study.rows[0], 0) is not None
    record["config"]["train"]["keep_last"] = 7  # not the default: another run
    path.write_text(json.dumps(record))
    assert read_record(study, study.rows[0], 0) is None


def test_a_run_timed_by_its_last_process_only_gets_its_own_clocks(tmp_path, small_study):
    """Runs finished before the study read the run's own clocks kept the finishing process's wall
    time as train_seconds; a resumed run so looked minutes long. backfill corrects the run and its
    record from the run's log, once."""
    study = small_study(tmp_path)
    row = study.rows[0]
    _finish(study, row, 0, 0.1)
    folder = run_dir(study, row, 0)
    with (folder / "metrics.jsonl").open("a") as log:  # the trainer's clock, summed over resumes
        log.write(json.dumps({"step": 20, "loss": 1.0, "train_seconds": 1500.0}) + "\n")
    write_record(study, row, 0, records.read_final(folder / "final_metrics.json"))
    assert backfill(study, [(row, 0)]) == 1
    final = json.loads((folder / "final_metrics.json").read_text())
    assert (final["train_seconds"], final["wall_seconds"], final["AP"]) == (1500.0, 1.0, 0.1)
    assert read_record(study, row, 0)["final"] == final
    assert backfill(study, [(row, 0)]) == 0  # once


def test_run_clocks_come_from_the_last_lines_that_have_them(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    assert records.run_clocks(folder) == {}
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"step": 5, "loss": 1.0, "train_seconds": 50.0},
        {"step": 5, "eval": {"AP": 0.1}, "train_seconds": 50.0, "eval_seconds": 7.0},
        {"step": 10, "loss": 1.0, "train_seconds": 100.0},
        {"step": 10, "eval": {"AP": 0.2}, "train_seconds": 100.0, "eval_seconds": 14.5},
    ]) + "\n")
    assert records.run_clocks(folder) == {"train_seconds": 100.0, "eval_seconds": 14.5}


def test_a_run_whose_box_loss_stopped_moving_says_so_in_its_record_and_on_the_page(tmp_path, small_study):
    """A run finished before the study kept ``stalled`` gets it from its log, once; the summary
    carries it for the page."""
    study = small_study(tmp_path)
    row = study.rows[0]
    _finish(study, row, 0, 0.0)
    folder = run_dir(study, row, 0)
    with (folder / "metrics.jsonl").open("a") as log:
        for step in range(10, 110, 10):
            log.write(json.dumps({"step": step, "loss": 2.0 - step / 100, "classification": 1.0 - step / 100,
                                  "bbox_regression": 1.0, "lr": 0.02, "train_seconds": step}) + "\n")
    write_record(study, row, 0, {**records.read_final(folder / "final_metrics.json"), "wall_seconds": 1.0})
    assert backfill(study, [(row, 0)]) == 1
    stalled = {"bbox_regression": {"since": 10, "value": 1.0}}
    assert json.loads((folder / "final_metrics.json").read_text())["stalled"] == stalled
    assert read_record(study, row, 0)["final"]["stalled"] == stalled
    assert backfill(study, [(row, 0)]) == 0  # once
    shutil.rmtree(folder)  # a clean clone: the record alone
    entry = next(e for e in summarize(study) if e["name"] == row.name)
    assert entry["stalled"] == {"0": stalled}
