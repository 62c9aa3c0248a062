"""The study's discussion: each verdict follows from the numbers, ties are not wins."""

from mrae.engine.study import README_BEGIN, README_END, discuss, markdown_table, update_readme


def _row(name: str, ap: float, std: float = 0.0, seeds: int = 1, curve=None) -> dict:
    metrics = {"AP": ap / 100, "ms_per_image": 100.0, "params_M": 18.2}
    return {
        "name": name,
        "seeds": list(range(seeds)),
        "mean": metrics,
        "std": {"AP": std / 100, "ms_per_image": 0.0},
        "curves": [curve or [(50, ap / 200), (100, ap / 100)]],
        "attention": None,
    }


def _claim(lines: list[str], title: str) -> str:
    return next(line for line in lines if title in line)


def test_a_paper_like_table_upholds_the_paper():
    summary = [
        _row("single C1", 2.3), _row("single C2", 2.6), _row("single C3", 2.4),
        _row("soft", 0.04), _row("MRAE template 1", 3.6), _row("MRAE template 2", 5.3),
        _row("MRAE template 3", 3.6), _row("MRAE template 1 -> 2 (mixed)", 3.5),
    ]
    lines = discuss(summary)
    assert "held. MRAE template 2 reaches 5.3 AP against 2.6" in _claim(lines, "doubles")
    assert "2.04x" in _claim(lines, "doubles")
    assert ": held;" in _claim(lines, "best template")
    assert ": held;" in _claim(lines, "Soft attention")
    assert ": held;" in _claim(lines, "Switching templates")
    assert "converges faster**: held" in _claim(lines, "converges faster")


def test_smaller_gains_ties_and_losses_are_called_so():
    summary = [
        _row("single C1", 3.0, std=0.2, seeds=3), _row("MRAE template 2", 4.0, std=0.2, seeds=3),
        _row("MRAE template 1", 4.05), _row("MRAE template 3", 2.0),
        _row("MRAE template 1 -> 2 (mixed)", 4.5),
    ]
    lines = discuss(summary)
    assert "partly held" in _claim(lines, "doubles")
    assert "beyond the seed spread" in _claim(lines, "doubles")
    assert "not shown (a tie)" in _claim(lines, "best template")
    assert ": did not hold;" in _claim(lines, "Switching templates")


def test_rows_that_did_not_learn_decide_nothing():
    summary = [_row("single C1", 0.0), _row("soft", 0.0), _row("MRAE template 2", 0.0)]
    lines = discuss(summary)
    assert "did not hold (a tie)" in _claim(lines, "doubles")
    assert "undefined (baseline at 0)" in _claim(lines, "doubles")
    assert "cannot be judged" in _claim(lines, "Soft attention")


def test_table_shows_mean_and_spread_only_for_several_seeds():
    table = markdown_table([_row("single C1", 2.5, std=0.3, seeds=3), _row("soft", 0.04)])
    assert "| single C1 | 3 | 2.5 ± 0.3 |" in table
    assert "| soft | 1 | 0.0 |" in table


def test_a_row_whose_every_seed_diverged_is_shown_and_left_out_of_the_verdicts():
    diverged = {**_row("MRAE template 2", 0.0), "seeds": [], "mean": {}, "std": {}, "curves": [],
                "diverged": {0: "training diverged at step 7"}}
    summary = [_row("single C1", 2.0), diverged]
    table = markdown_table(summary)
    assert "| MRAE template 2 (1 diverged) | 0 | diverged | diverged |" in table
    lines = discuss(summary)
    assert not any("doubles" in line for line in lines)
    assert "**MRAE template 2, seed 0 diverged** and is reported as such: training diverged at step 7" in lines


def test_the_readme_block_between_the_markers_is_replaced_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# Project\n\nintro\n\n", "\n\n## Layout\nkept\n"
    readme.write_text(f"{before}{README_BEGIN}\nold table\n{README_END}{after}")
    report = tmp_path / "docs" / "results.md"
    summary = [_row("single C1", 2.5, std=0.3, seeds=3), _row("MRAE template 2", 4.0)]
    assert update_readme(readme, summary, report, "mrae study configs/synth/study.yaml --jobs 2")
    text = readme.read_text()
    assert text.startswith(before + README_BEGIN) and text.endswith(README_END + after)
    assert "old table" not in text
    assert "[docs/results.md](docs/results.md)" in text
    assert "`mrae study configs/synth/study.yaml --jobs 2`" in text
    assert "| single C1 | 3 | 2.5 ± 0.3 |" in text and "| MRAE template 2 | 1 | 4.0 |" in text
    assert "- **MRAE doubles the AP of the single-level baselines**" in text
    # Without the markers the README is left alone.
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not update_readme(plain, summary, report, "mrae study x")
    assert plain.read_text() == "no markers\n"


def test_the_attention_verdict_says_whether_the_template_level_dominates():
    t1 = {**_row("MRAE template 1", 3.0), "attention": [0.6, 0.2, 0.2]}
    mixed = {**_row("MRAE template 1 -> 2 (mixed)", 3.0), "attention": [0.5, 0.3, 0.2]}
    line = _claim(discuss([t1, mixed]), "Where MRAE looks")
    # The mixed run ends with template 2, but C1 still leads: one row of two.
    assert "in 1 of 2 MRAE rows" in line
    assert "MRAE template 1 0.60/0.20/0.20" in line
