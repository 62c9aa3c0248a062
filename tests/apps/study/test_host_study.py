"""The host study (issue 18: does the ordering hold in one-stage hosts?): its rows in the synthetic
study file with the Faster R-CNN recipe, trained after every Faster R-CNN run, its claims judged
per host on made-up results, its section of the page with runs missing, the ledger read once per
run_jobs, and a --quick study of a one-stage row through the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mrae.apps.study import records, runner
from mrae.apps.study.claims import judge
from mrae.apps.study.effect import HELD, HELD_DIRECTION, NOT_HELD
from mrae.apps.study.report import render_page, render_report
from mrae.apps.study.spec import load_study, row_config
from mrae.engine.config import ModelConfig, to_dict
from mrae.modeling import registry

STUDY = Path(__file__).resolve().parents[3] / "configs" / "synth" / "study.yaml"
HOST_ROWS = [
    ("RetinaNet MRAE template 2", "mrae", "retinanet", "mrae_t2.yaml"),
    ("RetinaNet single C2", "baseline", "retinanet", "single_c2.yaml"),
    ("RetinaNet sum", "fusion", "retinanet", "sum.yaml"),
    ("FCOS MRAE template 2", "mrae", "fcos", "mrae_t2.yaml"),
    ("FCOS single C2", "baseline", "fcos", "single_c2.yaml"),
    ("FCOS sum", "fusion", "fcos", "sum.yaml"),
]
# The Faster R-CNN rows and run folders as they were before the host study: never to change.
PAPER_SLUGS = [
    "single_c1", "single_c2", "single_c3", "soft", "mrae_template_1", "mrae_template_2",
    "mrae_template_3", "mrae_spatial_template_2", "concat", "sum", "fpn", "fpn_all_anchors",
    "mrae_template_1____2__mixed", "mrae_template_2__same_total_steps_as_the_mixed_run",
]


# ------------------------------------------------------------------------------ the study file


def test_the_study_file_has_the_host_rows_after_the_untouched_faster_rcnn_rows():
    study = load_study(STUDY)
    paper = study.rows[: len(PAPER_SLUGS)]
    assert [row.slug for row in paper] == PAPER_SLUGS
    assert all(row.detector == "faster_rcnn" for row in paper)
    hosts = study.rows[len(PAPER_SLUGS):]
    assert [(r.name, r.role, r.detector, r.seeds) for r in hosts] == [
        (name, role, host, 3) for name, role, host, _ in HOST_ROWS]
    for row in hosts:
        assert row.config.parent.name == "hosts" and row.config.name.startswith(row.detector)
        assert row_config(study, row).model.detector == row.detector


def test_the_committed_records_still_belong_to_their_rows():
    """Adding the host rows changes no Faster R-CNN run's config: every committed record matches."""
    study = load_study(STUDY)
    found = 0
    for row in study.rows[: len(PAPER_SLUGS)]:
        for seed in range(row.seeds):
            path = records.record_path(study, row, seed)
            if path is not None and path.is_file():
                assert records.read_record(study, row, seed) is not None, (row.name, seed)
                found += 1
    assert found > 0 or not (study.records and study.records.is_dir())


@pytest.mark.parametrize(("name", "role", "host", "paper_config"), HOST_ROWS)
def test_each_host_row_is_its_faster_rcnn_row_with_only_the_host_changed(name, role, host, paper_config):
    """The same data, trunk, pretraining, input size, schedule, batch, lr and evaluation (the whole
    train, data, pretrain and eval sections) and the same model settings, but for the detector and
    the other hosts' sections, which the host does not read (at their defaults)."""
    study = load_study(STUDY)
    row = next(r for r in study.rows if r.name == name)
    paper = next(r for r in study.rows if r.config.name == paper_config and r.detector == "faster_rcnn")
    for seed in range(row.seeds):
        ours, theirs = to_dict(row_config(study, row, seed)), to_dict(row_config(study, paper, seed))
        assert ours["name"] != theirs["name"]
        for section in ("train", "data", "pretrain", "eval"):
            assert ours[section] == theirs[section], section
        defaults = dataclasses.asdict(ModelConfig())
        for key, value in ours["model"].items():
            if key == "detector":
                assert value == host
            elif key == host:  # its own section: the recipe's (RetinaNet: the anchors, below)
                continue
            elif key in registry.HOSTS:  # another host's section: not read, at its defaults
                assert value == defaults[key], key
            else:
                assert value == theirs["model"][key], key
    if host == "retinanet":  # RetinaNet keeps the study's clustered anchors
        assert ours["model"]["retinanet"]["anchor_sizes"] == theirs["model"]["faster_rcnn"]["anchor_sizes"] \
            == [6.8, 11.4, 19, 44]


def test_the_pool_trains_every_faster_rcnn_run_first_then_the_hosts_seed_by_seed():
    study = load_study(STUDY)
    jobs = [(row, seed) for row in study.rows for seed in range(row.seeds)]
    for order in (runner.pool_order(jobs), runner.study_order(jobs)):
        hosts = [row.detector for row, _ in order]
        first = hosts.index("retinanet")
        assert set(hosts[:first]) == {"faster_rcnn"} and "faster_rcnn" not in hosts[first:]
        later = order[first:]
        assert [seed for _, seed in later] == sorted(seed for _, seed in later)
        assert [row.name for row, seed in later if seed == 0] == [name for name, *_ in HOST_ROWS]
    # The Faster R-CNN runs keep the order they had: seed by seed, the long row first in each round.
    paper = [(row.name, seed) for row, seed in runner.pool_order(jobs) if row.detector == "faster_rcnn"]
    assert paper[0] == ("MRAE template 2, same total steps as the mixed run", 0)
    assert [seed for _, seed in paper] == sorted(seed for _, seed in paper)


# ------------------------------------------------------------------------------ the claims


def _host_rows(row, host: str, t2: list[float], c2: list[float], fused: list[float]) -> list[dict]:
    made = [row(f"row {host} a", "mrae", t2, template=2), row(f"row {host} b", "baseline", c2, level=2),
            row(f"row {host} c", "fusion", fused)]
    for entry in made:
        entry["model"] = {**entry["model"], "detector": host}
    made[2]["model"]["extractor"] = "sum"
    return made


def _by_id(rows: list[dict], hosts=("faster_rcnn", "retinanet", "fcos")) -> dict[str, dict]:
    return {claim["id"]: claim for claim in judge(rows, list(hosts))}


def test_each_host_is_judged_on_its_own_rows_and_leaves_the_papers_claims_alone(row, paper_like):
    paper_sum = row("sum", "fusion", [4.0, 4.1, 3.9])
    paper_sum["model"]["extractor"] = "sum"
    before = {key: claim for key, claim in _by_id([*paper_like, paper_sum]).items() if not claim.get("host")}
    # RetinaNet: the ordering holds (at the paper's size); FCOS: single C2 ahead, sum ahead. Their
    # single levels are far above Faster R-CNN's: they must not become the paper's best baseline.
    rows = [*paper_like, paper_sum,
            *_host_rows(row, "retinanet", [5.0, 5.1, 4.9], [2.5, 2.6, 2.4], [4.0, 4.2, 3.9]),
            *_host_rows(row, "fcos", [3.0, 3.1, 2.9], [9.0, 9.2, 8.9], [6.0, 6.1, 5.8])]
    claims = _by_id(rows)
    for key, claim in before.items():
        assert claims[key]["verdict"] == claim["verdict"] and claims[key]["comparisons"] == claim["comparisons"]
    retina, fcos = claims["retinanet_beats_baseline"], claims["fcos_beats_baseline"]
    assert retina["host"] == "retinanet" and retina["verdict"] == HELD
    assert (retina["comparisons"][0]["a"], retina["comparisons"][0]["b"]) == ("row retinanet a", "row retinanet b")
    assert retina["comparisons"][0]["paper_ratio"] == pytest.approx(5.0 / 2.6)
    assert retina["extra"].startswith("ratio of the means 2.00x (Faster R-CNN's MRAE template 2 vs single C2: 1.92x")
    assert claims["retinanet_vs_sum"]["verdict"] == HELD_DIRECTION
    assert claims["retinanet_vs_sum"]["comparisons"][0]["paper_ratio"] is None
    assert "Faster R-CNN's MRAE template 2 vs sum: 1.25x" in claims["retinanet_vs_sum"]["extra"]
    assert fcos["verdict"] == NOT_HELD and claims["fcos_vs_sum"]["verdict"] == NOT_HELD
    assert (fcos["comparisons"][0]["a"], fcos["comparisons"][0]["b"]) == ("row fcos a", "row fcos b")
    # Found by role and the config's detector, template, extractor: never by name.
    renamed = [{**entry, "name": f"other {i}"} for i, entry in enumerate(rows)]
    assert ({k: c["verdict"] for k, c in _by_id(renamed).items()}
            == {k: c["verdict"] for k, c in claims.items()})


def test_a_run_with_a_stalled_loss_is_said_in_its_hosts_list_only(row, paper_like):
    from mrae.apps.study.discussion import discuss, discuss_hosts

    rows = [*paper_like, *_host_rows(row, "fcos", [16.2, 0.0, 9.0], [0.6, 7.2, 3.0], [37.7, 30.0, 35.0])]
    rows[len(paper_like)]["stalled"] = {"1": {"bbox_regression": {"since": 30, "value": 0.99999}}}
    host_lines = [line for line in discuss_hosts(rows) if "stopped moving" in line]
    assert host_lines == [line for line in host_lines if line.startswith("**row fcos a, seed 1: a loss")]
    assert len(host_lines) == 1 and "bbox_regression held 1.000 from step 30" in host_lines[0]
    assert not [line for line in discuss(rows) if "stopped moving" in line]


def test_a_host_without_its_rows_is_not_judged_and_a_study_without_hosts_has_no_host_claims(row, paper_like):
    claims = _by_id([*paper_like, *_host_rows(row, "retinanet", [5.0, 5.1], [2.5, 2.6], [4.0, 4.1])[:1]])
    assert claims["retinanet_beats_baseline"]["verdict"] is None
    assert claims["retinanet_beats_baseline"]["missing"] == "row of role baseline in RetinaNet"
    assert claims["fcos_vs_sum"]["missing"] == ("row of role fusion (sum) in FCOS and row of role mrae with "
                                                "template 2 in FCOS")
    assert not [c for c in judge(paper_like, ["faster_rcnn"]) if c.get("host")]


# ------------------------------------------------------------------------------ the page


@pytest.fixture
def results(paper_like) -> dict:
    return {
        "command": "mrae study configs/synth/study.yaml --jobs 2", "commit": "0123abc",
        "date": "2026-12-01 10:00 UTC", "quick": False,
        "machine": {"machine": "x86_64", "threads": 2, "torch": "2.14.1", "device": "CPU"},
        "budget": {"steps": 300, "batch_size": 2, "epochs": 0.75, "lr": 0.02, "momentum": 0.9,
                   "milestones": [210, 270], "warmup_steps": 30, "eval_every": 75,
                   "backbone": "resnet18", "pretrained": "synthetic", "head": "mlp",
                   "out_channels": 256, "min_size": 300, "max_size": 512, "data": "synthetic data",
                   "differs": []},
        "ms_images": 20, "hosts": ["faster_rcnn", "retinanet", "fcos"], "rows": paper_like, "claims": [],
    }


def _section(page: str) -> str:
    start = page.index("## Does the ordering hold in one-stage hosts?")
    return page[start:page.index("## Convergence")]


def test_the_host_section_says_which_rows_have_not_run_yet(results):
    page = render_page(results, "c.png", None)
    section = _section(page)
    assert "| Faster R-CNN (the table above) | 5.0 ± 0.1 (3 seeds) | single C2: 2.6 ± 0.1 (3 seeds) | not run yet |" in section
    assert "| RetinaNet | not run yet | not run yet | not run yet |" in section
    assert "| FCOS | not run yet | not run yet | not run yet |" in section
    assert ("- **RetinaNet: MRAE beats the best single-level baseline** (paper: 5.0 vs 2.6 AP, 1.9x, in "
            "Faster R-CNN): not judged: the study has no finished row of role baseline in RetinaNet and row "
            "of role mrae with template 2 in RetinaNet.") in section
    assert "- **FCOS: MRAE beats sum**" in section
    assert "Time per run of these rows" not in section  # no host row has run
    # A JSON of a study without other hosts has no such section; one written before the hosts
    # were kept (no `hosts`) has it.
    assert "one-stage hosts" not in render_page({**results, "hosts": ["faster_rcnn"]}, "c.png", None)
    old = {k: v for k, v in results.items() if k != "hosts"}
    assert _section(render_page(old, "c.png", None)) == section


def test_the_page_takes_the_study_files_title_and_about(results):
    page = render_page({**results, "title": "Real images", "about": "**Cite** us."}, "c.png", None)
    assert page.startswith("# Real images\n") and "\n**Cite** us.\n" in page
    default = render_page(results, "c.png", None)  # a JSON written before the keys existed
    assert default.startswith("# Reproducing the paper's Tables 2 and 3 on the synthetic")


def test_the_host_rows_get_their_own_table_and_stay_out_of_the_main_one(tmp_path, row, results):
    host = _host_rows(row, "retinanet", [5.0, 5.2, 4.9], [2.5, 2.6, 2.4], [])
    host[0]["name"], host[1]["name"] = "RetinaNet MRAE template 2", "RetinaNet single C2"
    host[2] = {**host[2], "name": "RetinaNet sum", "seeds": [], "runs": [], "curves": [],
               "diverged": {"0": "training diverged at step 9"}}
    results["rows"] = [*results["rows"], *host]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    page = render_report(path).read_text()
    main = page[:page.index("## What held")]
    assert "RetinaNet" not in main
    section = _section(page)
    assert ("| RetinaNet | 5.0 ± 0.2 (3 seeds) | RetinaNet single C2: 2.5 ± 0.1 (3 seeds) | diverged (1 seed) |"
            in section)
    assert "- **RetinaNet: MRAE beats the best single-level baseline** (paper: 5.0 vs 2.6 AP, 1.9x, in Faster R-CNN): **held" in section
    assert "| RetinaNet MRAE template 2 | 3 | 5.0 ± 0.2 |" in section
    assert "Time per run of these rows: training 1.0 to 1.0 minutes." in section
    assert "**RetinaNet sum, seed 0 diverged**" in page


# ------------------------------------------------------------------------------ the ledger


def test_run_jobs_reads_each_record_once(tmp_path, monkeypatch, small_study):
    study = small_study(tmp_path)
    jobs = [(row, seed) for row in study.rows for seed in range(row.seeds)]
    for row, seed in jobs:
        records.write_record(study, row, seed, {"AP": 0.1})
    checked = []
    read = records._read_record
    monkeypatch.setattr(records, "_read_record", lambda *a: checked.append(a[1:3]) or read(*a))
    runner.run_jobs(study, jobs, quick=False, workers=1)  # every run recorded: nothing to train
    assert sorted((row.name, seed) for row, seed in checked) == sorted((row.name, seed) for row, seed in jobs)
    # Outside run_jobs every call reads the file ...
    checked.clear()
    assert records.finished(study, *jobs[0]) and records.finished(study, *jobs[0])
    assert len(checked) == 2

    # ... inside, each record once, however many passes the runner makes over its pending runs.
    def passes(study, jobs, quick, workers, mixed_trunks=False):
        for _ in range(3):
            assert all(records.finished(study, *job, quick) for job in jobs)

    checked.clear()
    monkeypatch.setattr(runner, "_run_jobs", passes)
    runner.run_jobs(study, jobs, quick=False)
    assert len(checked) == len(jobs)
    # A record written since is read again.
    checked.clear()
    with records.remembered(study):
        assert records.read_record(study, *jobs[0])["final"] == {"AP": 0.1}
        records.record_path(study, *jobs[0]).unlink()
        assert records.read_record(study, *jobs[0]) is None
        records.write_record(study, *jobs[0], {"AP": 0.25})
        assert records.read_record(study, *jobs[0])["final"] == {"AP": 0.25}
        assert records.read_record(study, *jobs[0])["final"] == {"AP": 0.25}
    assert len(checked) == 2


# ------------------------------------------------------------------------------ end to end

@pytest.mark.usefixtures("one_thread")
def test_a_quick_study_of_a_one_stage_row_runs_and_reports(tmp_path, host_run_config):
    from mrae import cli

    # a study row's file names its host itself (the study reads model.detector from it)
    (tmp_path / "retina.yaml").write_text(f"base: {host_run_config}\nmodel: {{detector: retinanet}}\n")
    study = tmp_path / "study.yaml"
    study.write_text(f"out: {tmp_path / 'runs'}\nrows:\n"
                     "  - {name: RetinaNet MRAE template 2, config: retina.yaml, role: mrae, seeds: 3}\n"
                     "quick: [train.steps=1, train.eval_every=1]\n")
    report = tmp_path / "results.md"
    assert cli.main(["study", str(study), "--quick", "--report", str(report)]) == 0
    results = json.loads(report.with_suffix(".json").read_text())
    assert results["hosts"] == ["retinanet"]
    [entry] = results["rows"]
    assert entry["model"]["detector"] == "retinanet" and entry["seeds"] == [0]
    assert entry["attention"] is not None and entry["ms_per_image"] > 0
    assert {c["id"] for c in results["claims"] if c.get("host")} == {"retinanet_beats_baseline", "retinanet_vs_sum"}
    section = _section(report.read_text())
    assert "| Faster R-CNN (the table above) | not run yet | not run yet | not run yet |" in section
    assert "| RetinaNet | " in section and "(1 seed) | not run yet | not run yet |" in section
    assert "| RetinaNet MRAE template 2 | 1 |" in section
