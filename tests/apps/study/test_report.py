"""The page, the tables, the plots and the README block, rendered from results.json alone."""

import json

import pytest

from mrae.apps.study.plots import attention_rows
from mrae.apps.study.readme import README_BEGIN, README_END, update_readme
from mrae.apps.study.report import render_report
from mrae.apps.study.summary import MIXED_REASON
from mrae.apps.study.tables import markdown_table


def test_table_shows_mean_and_spread_only_for_several_seeds(row):
    table = markdown_table([row("single C1", "baseline", [2.2, 2.5, 2.8]), row("soft", "soft", [0.04])])
    assert "| single C1 | 3 | 2.5 ± 0.3 |" in table
    assert "| soft | 1 | 0.0 |" in table


def test_a_row_whose_every_seed_diverged_is_shown_so(row):
    diverged = {**row("MRAE template 2", "mrae", []), "diverged": {"0": "training diverged at step 7"}}
    table = markdown_table([row("single C1", "baseline", [2.0]), diverged])
    assert "| MRAE template 2 (1 diverged) | 0 | diverged | diverged |" in table


def test_rendering_twice_from_one_json_gives_the_same_page(tmp_path, results):
    path = tmp_path / "docs" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))
    report = render_report(path)
    assert report == tmp_path / "docs" / "results.md"
    first = report.read_bytes()
    render_report(path)
    assert report.read_bytes() == first
    assert (tmp_path / "docs" / "results_convergence.png").stat().st_size > 0
    assert (tmp_path / "docs" / "results_attention.png").stat().st_size > 0
    assert not [p for p in (tmp_path / "docs").iterdir() if ".tmp" in p.name]
    text = first.decode()
    assert "- date: 2026-11-25 15:24 UTC" in text and "- commit: `0123abc`" in text
    assert "| MRAE template 2 | 3 | 5.0 ± 0.1 |" in text
    assert "- **MRAE beats the best single-level baseline** (paper: 5.0 vs 2.6 AP, 1.9x): **held (at the paper's size)**." in text
    assert "paired by seed" in text and "**not at the paper's size**" in text
    assert "the same resnet18 trunk, pretrained offline on synthetic crops" in text


def test_the_budget_says_which_row_has_a_scaled_schedule_and_why(tmp_path, results):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    text = render_report(path).read_text()
    assert "- budget, identical for every row: 100 steps of batch 2, about 0.25 epochs" in text
    assert ("- scaled schedule: **MRAE template 2, long** trains 2x the steps (200 steps, milestones "
            "[140, 180], warm-up 20; the evaluation and checkpoint intervals are unchanged): "
            + MIXED_REASON) in text
    assert ("- continued: **MRAE template 1 -> 2 (mixed)** starts from the final weights of MRAE "
            "template 1 and trains 100 more steps (200 in all)") in text


def test_the_seed_spread_of_every_row_is_checked_against_five_percent(row):
    from mrae.apps.study.budget import seed_spread

    line = seed_spread([row("a", "baseline", [10.0, 10.2, 9.8]), row("b", "soft", [3.0, 4.0, 5.0]),
                        row("one seed", "mrae", [7.0])])
    assert line.startswith("- seed spread (sample standard deviation of a row's AP over its mean; ")
    assert line.endswith(": a 2.0%, b 25.0%; 1 of 2 rows within 5%, above it: b")
    assert seed_spread([row("a", "baseline", [10.0, 10.1])]).endswith("; 1 of 1 rows within 5%")
    assert seed_spread([row("one seed", "mrae", [7.0])]) is None


def test_the_time_per_run_gives_both_clocks_and_says_which_runs_lack_one(row):
    from mrae.apps.study.budget import run_minutes

    a, b = row("a", "baseline", [10.0, 11.0]), row("b", "soft", [5.0])
    a["runs"][0].update(train_seconds=600.0, eval_seconds=120.0)
    a["runs"][1].update(train_seconds=900.0, eval_seconds=180.0)
    assert run_minutes([a]) == "training 10.0 to 15.0 minutes, evaluation 2.0 to 3.0 minutes"
    assert run_minutes([a, b]) == ("training 1.0 to 15.0 minutes, evaluation 2.0 to 3.0 minutes (2 of 3 "
                                   "runs; the others finished before it was kept)")
    assert run_minutes([]) == "training not measured"


def test_the_conclusion_names_what_the_data_cannot_say(results):
    from mrae.apps.study.sections import conclusion

    assert "whether this holds on real images (synthetic shapes only here)" in conclusion(results)
    real = {**results, "budget": {**results["budget"], "data": "data: a (train), b (val)"}}
    assert "whether this holds on other data (one dataset here)" in conclusion(real)


def test_the_attention_plot_takes_every_row_that_keeps_attention_weights(paper_like):
    names = [entry["name"] for entry in attention_rows(paper_like)]
    assert names == ["soft", "MRAE template 1", "MRAE template 2", "MRAE template 3",
                     "MRAE template 1 -> 2 (mixed)"]


def test_the_readme_block_between_the_markers_is_replaced_and_nothing_else(tmp_path, results):
    readme = tmp_path / "README.md"
    before, after = "# Project\n\nintro\n\n", "\n\n## Layout\nkept\n"
    readme.write_text(f"{before}{README_BEGIN}\nold table\n{README_END}{after}")
    path = tmp_path / "docs" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))
    render_report(path, readme=readme)
    text = readme.read_text()
    assert text.startswith(before + README_BEGIN) and text.endswith(README_END + after)
    assert "old table" not in text
    assert "[docs/results.md](docs/results.md)" in text
    assert "`mrae study configs/synth/study.yaml --jobs 2` (2026-11-25)" in text
    assert "| single C1 | 3 | 2.3 ± 0.1 |" in text
    assert "- **MRAE beats the best single-level baseline**" in text
    assert "**In short**: of " in text and "What it still cannot say" in text  # the page's conclusion
    # Rendering again gives the same README.
    once = readme.read_bytes()
    render_report(path, readme=readme)
    assert readme.read_bytes() == once
    # Without the markers the README is left alone.
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not update_readme(plain, results, tmp_path / "docs" / "results.md")
    assert plain.read_text() == "no markers\n"


def test_render_only_judges_stale_claims_again_from_the_rows(tmp_path, results):
    from mrae.apps.study.claims import judge
    from mrae.apps.study.report import rejudge

    path = tmp_path / "results.json"
    path.write_text(json.dumps({**results, "claims": [{"id": "beats_baseline", "verdict": "held"}]}))
    assert rejudge(path) is True
    claims = json.loads(path.read_text())["claims"]
    assert [c["verdict"] for c in claims] == [c["verdict"] for c in judge(results["rows"])]
    before = path.read_bytes()
    assert rejudge(path) is False and path.read_bytes() == before  # nothing to change: untouched
    # the study file's words (not measurements) are taken again where given
    assert rejudge(path, {"title": "T", "about": "the budget, said anew"}) is True
    assert json.loads(path.read_text())["about"] == "the budget, said anew"
    assert json.loads(path.read_text())["rows"] == results["rows"]


@pytest.mark.parametrize(("pretrained", "said"), [
    ("synthetic", "pretrained offline on synthetic crops"),
    ("dataset", "crops of the training set's own labelled boxes"),
    ("imagenet", "an ImageNet-initialised resnet18"),
    (None, "a randomly initialised resnet18"),
])
def test_the_page_says_how_every_rows_trunk_starts(tmp_path, results, pretrained, said):
    results["budget"]["pretrained"] = pretrained
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert said in render_report(path).read_text()


def test_the_pretraining_rows_get_their_own_section_and_no_claim(tmp_path, results, row):
    from mrae.apps.study.claims import judge

    ours = next(e for e in results["rows"] if e["name"] == "MRAE template 2")
    ours["model"]["pretrained"] = "dataset"
    synthetic = row("MRAE template 2, synthetic trunk", "start", [4.0, 4.1, 3.9])
    scratch = row("MRAE template 2, no pretraining", "start", [1.0, 1.2, 0.9])
    synthetic["model"]["pretrained"], scratch["model"]["pretrained"] = "synthetic", None
    results["rows"] += [synthetic, scratch]
    assert judge(results["rows"]) == judge([e for e in results["rows"] if e["role"] != "start"])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    page = render_report(path).read_text()
    section = page[page.index("## What the trunk's pretraining is worth"):page.index("## Convergence")]
    assert ("| MRAE template 2 | pretrained offline on crops of the training set's own boxes, `mrae "
            "pretrain --annotations` | 5.0 ± 0.1 (3 seeds) |") in section
    assert "| MRAE template 2, no pretraining | random | 1.0 ± 0.2 (3 seeds) |" in section
    assert ("- **MRAE template 2 against MRAE template 2, synthetic trunk**: AP (held): MRAE template 2 "
            "5.00 ± 0.10 (3 seeds) vs MRAE template 2, synthetic trunk 4.00 ± 0.10 (3 seeds), "
            "difference +1.00, ratio 1.25x") in section
    assert section.startswith("## What the trunk's pretraining is worth\n\nMRAE template 2 at the budget")
    plain = {**results, "rows": [e for e in results["rows"] if e["role"] != "start"]}
    path.write_text(json.dumps(plain))
    assert "## What the trunk's pretraining is worth" not in render_report(path).read_text()


def test_a_trunk_start_is_compared_with_the_row_it_differs_from_only_in_its_start(tmp_path, results,
                                                                                  row):
    c1 = next(e for e in results["rows"] if e["name"] == "single C1")
    scratch = row("single C1, no pretraining", "start", [1.0, 1.2, 0.9], extractor="single")
    scratch["model"]["pretrained"] = None
    results["rows"].append(scratch)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    page = render_report(path).read_text()
    section = page[page.index("## What the trunk's pretraining is worth"):page.index("## Convergence")]
    assert section.count("| single C1") == 2 and "MRAE template 2 |" not in section
    assert f"- **single C1 against single C1, no pretraining**: AP (held): single C1 {100 * c1['mean']['AP']:.2f}" in section


def test_trunk_starts_whose_row_has_not_finished_are_listed_without_a_comparison(tmp_path, results, row):
    scratch = row("sum, no pretraining", "start", [1.0, 1.2, 0.9], extractor="sum")
    scratch["model"]["pretrained"] = None
    results["rows"].append(scratch)  # the study's sum row has no finished run
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    page = render_report(path).read_text()
    section = page[page.index("## What the trunk's pretraining is worth"):page.index("## Convergence")]
    assert section.startswith("## What the trunk's pretraining is worth\n\nAt the budget above")
    assert "| sum, no pretraining | random | 1.0 ± 0.2 (3 seeds) |" in section
    assert "has no finished run yet: no comparison." in section


def test_the_inference_times_are_read_beside_the_machines_speed_and_load(tmp_path, results):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))  # a results file written before the study kept it
    assert "the machine then" not in render_report(path).read_text()
    results["ms_machine"] = "61 GFLOP/s float32 matmul at 2 threads, load average 3.9"
    path.write_text(json.dumps(results))
    assert ("measured one row after another in one process after training (the machine then: 61 "
            "GFLOP/s float32 matmul at 2 threads, load average 3.9; compare the rows as ratios)"
            ) in render_report(path).read_text()


def test_a_page_of_an_unfinished_study_says_which_runs_it_lacks(results):
    from mrae.apps.study.report import render_page

    partial = render_page({**results, "pending": [{"name": "FPN", "seeds": [1, 2]},
                                                  {"name": "sum", "seeds": [2]}]}, "c.png", None)
    assert ("**Partial: 3 runs of the study file have not finished (FPN (seeds 1, 2); sum (seed 2)); "
            "the rows and claims are those of the finished runs, and a claim whose rows have not all "
            "finished is not judged yet.**") in partial
    assert "Partial" not in render_page({**results, "pending": []}, "c.png", None)
    assert "Partial" not in render_page(results, "c.png", None)  # written before runs were counted


def test_the_ms_column_says_which_rows_were_timed_again_after_training(results):
    from mrae.apps.study.report import ms_sentence

    assert ms_sentence(results).startswith("ms/img: inference of each row's first model, batch 1, on "
                                           "the first 20 val images, measured one row after another")
    rows = [dict(e) for e in results["rows"]]
    del rows[0]["ms_images"]  # a row known from the study's ledger only: no weights to time
    assert (f"; {rows[0]['name']}: the mean of the runs' own timing in their final evaluation"
            in ms_sentence({**results, "rows": rows}))
    for entry in rows:
        entry.pop("ms_images", None)
    assert ms_sentence({**results, "rows": rows, "ms_images": 0}).startswith(
        "ms/img: the mean of the runs' own timing in their final evaluation")
