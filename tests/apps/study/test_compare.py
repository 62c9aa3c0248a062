"""Two studies' verdicts side by side (the synthetic and the real-data study), from their JSONs."""

import json
from pathlib import Path

import pytest

from mrae.apps.study.claims import judge
from mrae.apps.study.compare import (
    AGREE,
    BOTH_BELOW,
    CANNOT_SAY,
    COMPARE_BEGIN,
    COMPARE_END,
    DISAGREE,
    IN_DIRECTION,
    agreement,
    comparison,
)
from mrae.apps.study.effect import (
    HELD,
    HELD_DIRECTION,
    NOT_HELD,
    NOT_PAPER_SIZE,
    SMALLER,
    UNDECIDED,
)
from mrae.apps.study.readme import README_BEGIN, README_END
from mrae.apps.study.report import render_report


@pytest.mark.parametrize(("a", "b", "word"), [
    (HELD, HELD, AGREE),
    (NOT_HELD, NOT_HELD, AGREE),
    (NOT_PAPER_SIZE, NOT_PAPER_SIZE, AGREE),
    (HELD, SMALLER, IN_DIRECTION),
    (SMALLER, HELD_DIRECTION, IN_DIRECTION),
    (SMALLER, NOT_PAPER_SIZE, BOTH_BELOW),
    (NOT_PAPER_SIZE, SMALLER, BOTH_BELOW),
    (HELD, NOT_HELD, DISAGREE),
    (HELD, NOT_PAPER_SIZE, DISAGREE),
    (NOT_HELD, SMALLER, DISAGREE),
    (UNDECIDED, UNDECIDED, CANNOT_SAY),
    (HELD, UNDECIDED, CANNOT_SAY),
    (None, HELD, CANNOT_SAY),
])
def test_agreement_of_two_verdicts(a, b, word):
    assert agreement(a, b) == word


def _reversed(rows: list[dict]) -> list[dict]:
    """The rows with every MRAE row's AP scaled down to a third: MRAE now loses to the baselines."""
    out = []
    for entry in rows:
        if entry["role"] == "mrae":
            entry = {**entry, "runs": [{**r, "AP": r["AP"] / 3} for r in entry["runs"]],
                     "curves": [[[step, ap / 3] for step, ap in curve] for curve in entry["curves"]]}
        out.append(entry)
    return out


def test_the_table_sets_each_shared_claim_side_by_side_and_names_the_rest(paper_like):
    synthetic = {"claims": judge(paper_like)}
    real = {"claims": [c for c in judge(_reversed(paper_like)) if c["id"] != "mixed_hurts"]}
    lines = comparison(real, synthetic, "real", "synthetic")
    table = "\n".join(lines)
    assert lines[0] == "| claim | synthetic | real | agree |"
    beats = next(line for line in lines if line.startswith("| MRAE beats the best single-level baseline"))
    cells = [c.strip() for c in beats.strip("|").split("|")]
    synthetic_beats = next(c for c in synthetic["claims"] if c["id"] == "beats_baseline")
    interval = synthetic_beats["comparisons"][0]["interval"]
    assert cells[1] == (f"**{synthetic_beats['verdict']}**: {interval['ratio']:.2f}x "
                        f"({interval['low']:.2f}-{interval['high']:.2f})")
    assert cells[2].startswith(f"**{NOT_HELD}**: 0.")  # a third of the AP: the other direction
    assert cells[3] == agreement(synthetic_beats["verdict"], NOT_HELD) == DISAGREE
    # A claim with two comparisons names each pair; the counts add up; the claim only one judged.
    assert "MRAE template 2 / MRAE template 1 " in table
    shared = len(synthetic["claims"]) - 1
    assert f"Of the {shared} claims in both studies: " in table
    counts = lines[-2].split(": ", 1)[1].rstrip(".").split(", ")
    assert sum(int(part.split(" ", 1)[0]) for part in counts) == shared
    assert lines[-1] == ("In one study only (the other does not run its rows): Switching templates "
                         "mid-training hurts (only synthetic).")


def test_a_claim_whose_rows_a_study_file_lacks_leaves_the_table(paper_like):
    """A complete real study without a soft row: its soft claim is not run, not 'not judged'."""
    synthetic = {"claims": judge(paper_like)}
    real_rows = [e for e in paper_like if e["role"] != "soft"]
    real = {"claims": judge(real_rows, pending=[])}
    soft = next(c for c in real["claims"] if c["id"] == "soft_barely_learns")
    assert soft["verdict"] is None and soft["lacking"] == "row of role soft"
    lines = comparison(real, synthetic, "real", "synthetic")
    assert not any(line.startswith("| Soft attention") for line in lines)
    assert "Soft attention barely learns: well below the baselines (only synthetic)" in lines[-1]
    # still training (its row pending): in the table, not judged yet
    pending = [{"name": "soft", "role": "soft", "model": {"extractor": "soft"}, "seeds": [0, 1, 2]}]
    real = {"claims": judge(real_rows, pending=pending)}
    lines = comparison(real, synthetic, "real", "synthetic")
    assert any(line.startswith("| Soft attention") and "| not judged | cannot say |" in line for line in lines)
    assert ("Not judged yet in the real study (its rows have not all finished; its page names them): "
            "Soft attention barely learns: well below the baselines.") in lines


def test_no_shared_claim_says_so():
    assert comparison({"claims": []}, {"claims": []}, "real", "synthetic") == [
        "No claim is judged in both synthetic and real."]


def _write(tmp_path, results: dict, name: str) -> Path:
    path = tmp_path / "docs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results))
    return path


def test_the_page_and_the_readme_block_compare_with_the_other_study(tmp_path, results, paper_like,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)  # compare.results is relative to the working folder, as on the CLI
    synthetic = _write(tmp_path, {**results, "claims": judge(paper_like)}, "results.json")
    real = _write(tmp_path, {**results, "study": "configs/hituav/study.yaml",
                             "command": "mrae study configs/hituav/study.yaml --jobs 2",
                             "claims": judge(_reversed(paper_like)),
                             "compare": {"results": "docs/results.json", "this": "HIT-UAV",
                                         "other": "synthetic"}}, "results_hituav.json")
    readme = tmp_path / "README.md"
    head = f"# P\n\n{README_BEGIN}\nsynthetic headline\n{README_END}\n\n"
    readme.write_text(f"{head}{COMPARE_BEGIN}\nqueued\n{COMPARE_END}\n\n## Layout\n")
    synthetic_before = synthetic.read_bytes()
    page = render_report(real, compare_readme=readme)
    text = page.read_text()
    assert "## Against the synthetic study" in text
    assert "| claim | synthetic | HIT-UAV | agree |" in text
    # The README: only the comparison block changed; the synthetic study's files are untouched.
    after = readme.read_text()
    assert after.startswith(head + COMPARE_BEGIN) and after.endswith(COMPARE_END + "\n\n## Layout\n")
    assert "queued" not in after and "| claim | synthetic | HIT-UAV | agree |" in after
    assert "[docs/results_hituav.md](docs/results_hituav.md)" in after
    assert synthetic.read_bytes() == synthetic_before
    once = readme.read_bytes()
    render_report(real, compare_readme=readme)
    assert readme.read_bytes() == once
    # a study still training says so in the README's block too, not only on its page
    assert "Partial" not in after
    results_real = json.loads(real.read_text())
    _write(tmp_path, {**results_real, "pending": [{"name": "sum", "seeds": [1, 2]}]}, "results_hituav.json")
    render_report(real, compare_readme=readme)
    assert ("**Partial: 2 runs of the study file have not finished (sum (seeds 1, 2)); the rows and "
            "claims are those of the finished runs") in readme.read_text()


def test_without_the_other_studys_results_the_page_says_so_and_the_readme_is_left(tmp_path, results,
                                                                                    paper_like, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = _write(tmp_path, {**results, "study": "configs/hituav/study.yaml", "claims": judge(paper_like),
                             "compare": {"results": "docs/results.json", "this": "HIT-UAV",
                                         "other": "synthetic"}}, "results_hituav.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"{COMPARE_BEGIN}\nqueued\n{COMPARE_END}\n")
    text = render_report(real, compare_readme=readme).read_text()
    assert ("The synthetic study's results (`docs/results.json`) are not there (or not readable) yet; "
            "`mrae study configs/hituav/study.yaml --render-only` adds this comparison") in text
    assert readme.read_text() == f"{COMPARE_BEGIN}\nqueued\n{COMPARE_END}\n"


def test_one_render_reads_the_other_studys_results_once(tmp_path, results, paper_like, monkeypatch):
    from mrae.apps.study import compare

    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {**results, "claims": judge(paper_like)}, "results.json")
    real = _write(tmp_path, {**results, "claims": judge(_reversed(paper_like)),
                             "compare": {"results": "docs/results.json", "this": "HIT-UAV",
                                         "other": "synthetic"}}, "results_hituav.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"{COMPARE_BEGIN}\nqueued\n{COMPARE_END}\n")
    reads = []
    read_text = compare.read_text
    monkeypatch.setattr(compare, "read_text", lambda path, *a, **k: reads.append(path)
                        or read_text(path, *a, **k))
    text = render_report(real, compare_readme=readme).read_text()
    assert "| claim | synthetic | HIT-UAV | agree |" in text and "queued" not in readme.read_text()
    assert [str(path) for path in reads] == ["docs/results.json"]  # the page and the README block
