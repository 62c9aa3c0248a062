"""Study records are checked as they are read (issue 35): a damaged or foreign record is named in
one line, never counted, never taken for "not started", and no run trains over it."""

from __future__ import annotations

import json

import pytest

from mrae import cli
from mrae.apps.study import runner
from mrae.apps.study.records import BadRecord, bad_records, read_record, record_path, write_record
from mrae.apps.study.spec import run_dir
from mrae.apps.study.status import BAD, study_status
from mrae.apps.study.summary import summarize
from mrae.files import write_json_atomic


def _record(study, row, seed, ap=0.2):
    write_record(study, row, seed, {"AP": ap, "AP50": 0.4, "train_seconds": 60.0})
    return record_path(study, row, seed)


def _edit(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (case, how the record file is damaged, words the one line must hold)
CASES = [
    ("deeply nested", lambda p: p.write_text(_nested(100_000)), "not readable JSON"),
    ("string-valued", lambda p: p.write_text(json.dumps("seed0")), "holds str, not a study record"),
    ("key-less", lambda p: p.write_text("{}"), "has no format, row, seed, config, final, curve"),
    ("garbage curve", lambda p: _edit(p, lambda r: r.update(curve=[["x", 0.1]])), "its curve holds"),
    ("curve not a list", lambda p: _edit(p, lambda r: r.update(curve="abc")), "its curve is str"),
    ("NaN AP", lambda p: p.write_text(p.read_text().replace('"AP": 0.2', '"AP": NaN')), "AP must be a fraction"),
    ("1e9 AP", lambda p: _edit(p, lambda r: r["final"].update(AP=1e9)), "AP must be a fraction"),
    ("AP as text", lambda p: _edit(p, lambda r: r["final"].update(AP="0.2")), "AP must be a fraction"),
    ("negative clock", lambda p: _edit(p, lambda r: r["final"].update(train_seconds=-5.0)),
     "train_seconds must be finite and >= 0"),
    ("another row", lambda p: _edit(p, lambda r: r.update(row="MRAE template 1")),
     "records row 'MRAE template 1', but lies where row 'single C1'"),
    ("another seed", lambda p: _edit(p, lambda r: r.update(seed=1)), "records seed 1, but lies where seed 0"),
    ("garbage config", lambda p: _edit(p, lambda r: r.update(config={"model": 5})),
     "its config is not one the study's config schema reads"),
]


@pytest.mark.parametrize(("damage", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_record_is_named_and_never_counted(tmp_path, small_study, damage, says):
    study = small_study(tmp_path)
    single = study.rows[0]
    _record(study, single, 1, ap=0.3)  # a sound record beside it keeps counting
    damage(_record(study, single, 0))

    with pytest.raises(BadRecord, match=says) as error:
        read_record(study, single, 0)
    line = str(error.value)
    assert "\n" not in line and str(record_path(study, single, 0)) in line
    assert "restore it" in line and "move it aside" in line  # what to do
    # never counted: the summary has seed 1 alone
    entry = next(e for e in summarize(study) if e["name"] == "single C1")
    assert entry["seeds"] == [1] and entry["runs"][0]["AP"] == 0.3
    # never "not started": --status shows it apart, with its line
    states = {s.seed: s for row, runs in study_status(study) for s in runs if row.name == "single C1"}
    assert states[0].state == BAD and says in states[0].problem
    assert [(row.name, seed) for row, seed, _ in bad_records(study, [(single, 0), (single, 1)])] == [
        ("single C1", 0)]


def test_status_on_the_command_line_lists_the_bad_record_and_training_refuses_to_go_over_it(
        tmp_path, small_study, capsys, monkeypatch):
    study = small_study(tmp_path)
    single = study.rows[0]
    path = _record(study, single, 0)
    _edit(path, lambda r: r["final"].update(AP=float("nan")))

    assert cli.main(["study", str(study.source), "--status"]) == 0
    out = capsys.readouterr().out
    assert "| bad record (seeds) |" in out and "| single C1 | – | – | 1 | – | 0 |" in out
    assert "1 with a bad record (not counted, and no run trains over it)" in out
    assert f"- {path}: its final metrics: AP must be a fraction" in out

    trained = []
    monkeypatch.setattr(runner, "run_jobs", lambda *args, **kwargs: trained.append(args))
    before = path.read_bytes()
    assert cli.main(["study", str(study.source), "--rows", "single C1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "move it aside" in err
    assert not trained and path.read_bytes() == before  # nothing trained, the record untouched


def test_a_run_folder_with_damaged_final_metrics_is_bad_too(tmp_path, small_study):
    study = small_study(tmp_path)
    done = run_dir(study, study.rows[0], 0) / "final_metrics.json"
    write_json_atomic(done, {"AP": 0.2, "AP50": 7.0})
    states = {s.seed: s for row, runs in study_status(study) for s in runs if row.name == "single C1"}
    assert states[0].state == BAD and "AP50 must be a fraction in [0, 1] (or NaN), got 7.0" in states[0].problem
    assert not [e for e in summarize(study) if e["name"] == "single C1"]
    # a metric without ground truth is NaN, and a diverged run has no AP: both sound
    write_json_atomic(done, {"AP": 0.2, "APm": float("nan"), "recall@100": float("nan")})
    write_json_atomic(run_dir(study, study.rows[0], 1) / "final_metrics.json", {"diverged": "at step 3"})
    assert bad_records(study, [(study.rows[0], 0), (study.rows[0], 1)]) == []


def test_report_only_names_a_bad_record_and_leaves_it_out(tmp_path, small_study, capsys):
    study = small_study(tmp_path)
    single = study.rows[0]
    _record(study, single, 0, ap=0.25)
    bad = _record(study, single, 1)
    _edit(bad, lambda r: r.update(seed=0))  # seed 0's record copied over seed 1's
    report = tmp_path / "out" / "results.md"

    assert cli.main(["study", str(study.source), "--report-only", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {bad}: records seed 0, but lies where seed 1's record goes" in out
    results = json.loads(report.with_suffix(".json").read_text())
    (entry,) = results["rows"]
    assert entry["seeds"] == [0] and entry["runs"][0]["AP"] == 0.25  # counted once, as seed 0
    assert {"name": "single C1", "seeds": [1]}.items() <= results["pending"][0].items()
