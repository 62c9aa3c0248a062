"""Reading the study file: roles, seeds, schedule_scale, run folders, init_from; one-line errors."""

import re
from pathlib import Path

import pytest

from mrae.apps.study.spec import ROLES, load_study, row_config
from mrae.errors import ConfigError

CONFIGS = {
    "single.yaml": "model: {extractor: single, level: 2}\n",
    "mrae_t1.yaml": "model: {extractor: mrae, template: 1}\n",
    "mrae_t2.yaml": "model: {extractor: mrae, template: 2}\n",
    "single_scratch.yaml": "base: single.yaml\nmodel: {pretrained: null}\n",
    "train.yaml": "train: {steps: 100, milestones: [70, 90], warmup_steps: 10, eval_every: 25, "
                  "checkpoint_every: 50}\nmodel: {extractor: mrae}\n",
}


def _study(tmp_path: Path, rows: str, extra: str = "") -> Path:
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "study.yaml"
    path.write_text(f"out: {tmp_path / 'runs'}\n{extra}rows:\n{rows}")
    return path


def _error(tmp_path: Path, rows: str) -> str:
    with pytest.raises(ConfigError) as error:
        load_study(_study(tmp_path, rows))
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_study_file_is_read_into_rows(tmp_path):
    study = load_study(_study(
        tmp_path,
        "  - {name: single C2, config: single.yaml, role: baseline, seeds: 3}\n"
        "  - {name: MRAE template 1, config: mrae_t1.yaml, role: mrae}\n"
        "  - {name: mixed, config: mrae_t2.yaml, role: mixed, init_from: MRAE template 1}\n"
        "  - {name: long, config: mrae_t2.yaml, role: mrae_long, schedule_scale: 2}\n",
        extra="overrides: [train.steps=20]\nquick: [train.steps=2]\nreadme: README.md\n",
    ))
    assert [(r.name, r.role, r.seeds, r.init_from, r.schedule_scale) for r in study.rows] == [
        ("single C2", "baseline", 3, None, 1), ("MRAE template 1", "mrae", 1, None, 1),
        ("mixed", "mixed", 1, "MRAE template 1", 1), ("long", "mrae_long", 1, None, 2)]
    assert study.rows[0].slug == "single_c2" and study.rows[0].config == tmp_path / "single.yaml"
    assert study.out == tmp_path / "runs" and study.readme == Path("README.md")
    assert study.overrides == ["train.steps=20"] and study.quick_overrides == ["train.steps=2"]
    assert row_config(study, study.rows[0], seed=2).train.seed == 2
    assert row_config(study, study.rows[0], quick=True).train.steps == 2


def test_schedule_scale_multiplies_steps_milestones_warm_up_and_evaluation_interval(tmp_path):
    """A scaled row is evaluated as many times as the others, at the same fractions of its
    schedule; its checkpoint interval stays."""
    study = load_study(_study(
        tmp_path,
        "  - {name: plain, config: train.yaml, role: mrae}\n"
        "  - {name: long, config: train.yaml, role: mrae_long, schedule_scale: 2}\n",
    ))
    plain, long = (row_config(study, row).train for row in study.rows)
    assert (plain.steps, list(plain.milestones), plain.warmup_steps) == (100, [70, 90], 10)
    assert (long.steps, list(long.milestones), long.warmup_steps) == (200, [140, 180], 20)
    assert (plain.eval_every, long.eval_every, long.checkpoint_every) == (25, 50, 50)


@pytest.mark.parametrize("role", ["", "role: null, ", "role: best, "])
def test_a_row_without_a_valid_role_is_refused_naming_the_row_and_the_roles(tmp_path, role):
    message = _error(tmp_path, f"  - {{name: single C2, config: single.yaml, {role}seeds: 1}}\n")
    assert "row 'single C2'" in message
    assert ", ".join(ROLES) in message


def test_a_role_must_fit_the_rows_config(tmp_path):
    message = _error(tmp_path, "  - {name: C2, config: single.yaml, role: mrae}\n")
    assert "row 'C2' has role mrae" in message and "builds extractor single" in message


def test_a_trunk_start_row_needs_the_row_it_differs_from_only_in_its_start(tmp_path):
    rows = "  - {name: C2 from scratch, config: single_scratch.yaml, role: start}\n"
    message = _error(tmp_path, "  - {name: t2, config: mrae_t2.yaml, role: mrae}\n" + rows)
    assert "row 'C2 from scratch' has role start, but no row of another role" in message
    study = load_study(_study(tmp_path, "  - {name: C2, config: single.yaml, role: baseline}\n" + rows))
    assert [r.role for r in study.rows] == ["baseline", "start"]


@pytest.mark.parametrize(("value", "key"), [("seeds: abc", "seeds"), ("seeds: 0", "seeds"),
                                            ("seeds: 1.5", "seeds"), ("seeds: true", "seeds"),
                                            ("schedule_scale: 0", "schedule_scale"),
                                            ("schedule_scale: two", "schedule_scale")])
def test_seeds_and_schedule_scale_must_be_integers_of_at_least_one(tmp_path, value, key):
    message = _error(tmp_path, f"  - {{name: C2, config: single.yaml, role: baseline, {value}}}\n")
    assert f"row 'C2': {key} must be an integer >= 1" in message


def test_a_name_must_be_a_string(tmp_path):
    message = _error(tmp_path, "  - {name: 12, config: single.yaml, role: baseline}\n")
    assert "rows[0].name must be a non-empty string, got 12" in message


def test_two_rows_with_one_run_folder_are_refused(tmp_path):
    message = _error(
        tmp_path,
        "  - {name: single C1, config: single.yaml, role: baseline}\n"
        "  - {name: single-C1, config: single.yaml, role: baseline}\n",
    )
    assert "rows 'single C1' and 'single-C1' would share the run folder 'single_c1'" in message


def test_init_from_must_name_an_earlier_row_and_a_mixed_row_needs_one(tmp_path):
    message = _error(
        tmp_path,
        "  - {name: mixed, config: mrae_t2.yaml, role: mixed, init_from: t1}\n"
        "  - {name: t1, config: mrae_t1.yaml, role: mrae}\n",
    )
    assert "row 'mixed': init_from 't1' must name an earlier row" in message
    message = _error(tmp_path, "  - {name: mixed, config: mrae_t2.yaml, role: mixed}\n")
    assert "role mixed needs init_from" in message


def test_unknown_keys_and_missing_configs_are_refused(tmp_path):
    assert "unknown key(s) ['seed']" in _error(
        tmp_path, "  - {name: C2, config: single.yaml, role: baseline, seed: 3}\n")
    assert "does not exist" in _error(tmp_path, "  - {name: C2, config: nope.yaml, role: baseline}\n")


def test_the_synthetic_study_has_every_row_with_three_seeds():
    study = load_study("configs/synth/study.yaml")
    assert all(row.seeds == 3 for row in study.rows)
    paper = [row for row in study.rows if row.detector == "faster_rcnn"]  # the others: test_host_study.py
    roles = [row.role for row in paper]
    assert roles == ["baseline"] * 3 + ["soft"] + ["mrae"] * 3 + [
        "mrae_spatial", "fusion", "fusion", "fpn", "fpn_all_anchors", "mixed", "mrae_long"]
    by_role = {row.role: row for row in study.rows}
    assert by_role["mixed"].init_from == "MRAE template 1"
    long = by_role["mrae_long"]
    assert long.schedule_scale == 2 and long.config.name == "mrae_t2.yaml"
    assert row_config(study, long).train.steps == 2 * row_config(study, study.rows[0]).train.steps
    assert row_config(study, by_role["fpn_all_anchors"]).model.faster_rcnn.fpn_anchors == "all"
    templates = [row_config(study, row).model.template for row in paper if row.role == "mrae"]
    assert templates == [1, 2, 3]


def test_title_and_about_are_read_as_text_and_refused_otherwise(tmp_path):
    row = "  - {name: a, config: mrae_t2.yaml, role: mrae}\n"
    study = load_study(_study(tmp_path, row, 'title: "Real images"\nabout: |\n  Cite: Someone (2023).\n'))
    assert (study.title, study.about) == ("Real images", "Cite: Someone (2023).")
    assert load_study(_study(tmp_path, row)).title is None
    with pytest.raises(ConfigError, match="`about` must be text"):
        load_study(_study(tmp_path, row, "about: [1, 2]\n"))


def test_every_hituav_page_carries_the_datasets_citation():
    """The HIT-UAV license asks every page reporting on it to cite it: the study files put it on
    their pages (``about``), the cut rows and the partial curve with it."""
    root = Path(__file__).resolve().parents[3] / "configs" / "hituav"
    studies = sorted(p.name for p in root.glob("*.yaml") if "rows:" in p.read_text())
    assert studies == ["nwd_study.yaml", "study.yaml"]
    for name in studies:
        about = load_study(root / name).about
        assert "HIT-UAV: A\n" in about and "https://doi.org/10.1038/s41597-023-02066-6" in about
        assert "CC BY 4.0" in about
    about = load_study(root / "study.yaml").about
    assert "Rows cut for the CPU" in about and "The pretraining comparison" in about


def test_an_unknown_top_level_key_is_refused_naming_the_valid_ones(tmp_path):
    row = "  - {name: a, config: mrae_t2.yaml, role: mrae}\n"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['readm'\]; valid: \['rows'") as error:
        load_study(_study(tmp_path, row, "readm: README.md\n"))
    assert "\n" not in str(error.value)


def test_report_and_compare_are_read_and_checked(tmp_path):
    row = "  - {name: a, config: mrae_t2.yaml, role: mrae}\n"
    study = load_study(_study(tmp_path, row))
    assert (study.report, study.compare) == (Path("docs/results.md"), None)
    study = load_study(_study(tmp_path, row, "report: docs/real.md\ncompare: {results: docs/results.json, "
                                            "this: real, other: synthetic, readme: README.md}\n"))
    assert study.report == Path("docs/real.md")
    assert study.compare.results == Path("docs/results.json")
    assert (study.compare.this, study.compare.other, study.compare.readme) == ("real", "synthetic",
                                                                                Path("README.md"))
    assert study.compare.title is None
    titled = load_study(_study(tmp_path, row, "compare: {results: r.json, this: a, other: b, title: ' Same? '}\n"))
    assert titled.compare.title == "Same?"
    for extra, said in [
        ("report: docs/real.json\n", "`report` must be the results page's path ending in .md"),
        ("compare: docs/results.json\n", "`compare` must be a mapping"),
        ("compare: {results: docs/results.json, this: real}\n", "compare.other must be non-empty text"),
        ("compare: {results: docs/results.md, this: a, other: b}\n", "compare.results must be a results JSON"),
        ("compare: {results: r.json, this: a, other: b, page: x}\n", "compare has unknown key(s) ['page']"),
        ("compare: {results: r.json, this: a, other: b, title: 3}\n", "compare.title must be non-empty text"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(said)):
            load_study(_study(tmp_path, row, extra))


def test_the_hituav_study_writes_its_own_page_and_compares_with_the_synthetic_one():
    """Run without --report, the HIT-UAV study may not write the synthetic study's docs/results.md."""
    study = load_study(Path(__file__).resolve().parents[3] / "configs" / "hituav" / "study.yaml")
    assert study.report == Path("docs/results_hituav.md")
    assert study.compare.results == Path("docs/results.json") and study.compare.readme == Path("README.md")
    assert study.records == Path("docs/results_hituav_runs")
