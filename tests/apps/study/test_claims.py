"""The paper's claims, judged on the ratio of two rows' AP against the paper's ratio, on hand-made
summaries: verdicts at the paper's size, rows found by role, idle rows deciding nothing, claims
with several comparisons combined."""

import pytest
from scipy.stats import ttest_ind

from mrae.apps.study.claims import combine, compare, judge
from mrae.apps.study.discussion import describe, discuss
from mrae.apps.study.effect import (
    HELD,
    HELD_DIRECTION,
    NOT_HELD,
    NOT_PAPER_SIZE,
    SMALLER,
    UNDECIDED,
)


def _claims(rows: list[dict]) -> dict[str, dict]:
    return {claim["id"]: claim for claim in judge(rows)}


def _line(lines: list[str], title: str) -> str:
    return next(line for line in lines if title in line)


def test_a_comparison_keeps_the_means_the_interval_and_welchs_p(row):
    a, b = row("A", "mrae", [5.0, 5.2, 4.9]), row("B", "baseline", [2.6, 2.5, 2.8])
    c = compare(a, b, 1.9)
    assert c["verdict"] == HELD and c["interval"]["method"] == "paired"
    assert c["p"] == pytest.approx(ttest_ind([5.0, 5.2, 4.9], [2.6, 2.5, 2.8], equal_var=False).pvalue)
    assert c["mean_a"] == pytest.approx(5.0333, abs=1e-3) and c["n_a"] == c["n_b"] == 3
    assert c["std_a"] == pytest.approx(0.1528, abs=1e-3)  # sample std (n - 1)
    assert c["diff"] == pytest.approx(c["mean_a"] - c["mean_b"])
    assert c["paper_ratio"] == 1.9


def test_a_claim_with_several_comparisons_takes_the_weakest_joint_verdict():
    def c(verdict, decisive=True):
        return {"verdict": verdict, "decisive": decisive}

    assert combine([c(HELD), c(HELD)]) == HELD
    assert combine([c(HELD), c(SMALLER)]) == SMALLER
    assert combine([c(HELD), c(NOT_HELD)]) == NOT_HELD
    assert combine([c(HELD), c(UNDECIDED)]) == UNDECIDED
    assert combine([c(SMALLER), c(UNDECIDED)]) == NOT_PAPER_SIZE  # one excludes the paper's size
    assert combine([c(NOT_PAPER_SIZE), c(UNDECIDED)]) == NOT_PAPER_SIZE
    assert combine([c(HELD), c(NOT_HELD, decisive=False)]) == HELD
    assert combine([]) is None


def test_a_paper_like_study_upholds_every_claim(paper_like):
    claims = _claims(paper_like)
    for key in ("beats_baseline", "template_2_best", "soft_barely_learns", "mixed_hurts"):
        assert claims[key]["verdict"] == HELD, key
    # The paper gives no ratio for these: held in direction.
    for key in ("converges_faster", "vs_fpn", "vs_fpn_all_anchors"):
        assert claims[key]["verdict"] == HELD_DIRECTION, key
    # The best baseline is the one with the highest mean AP, found by role.
    assert claims["beats_baseline"]["comparisons"][0]["b"] == "single C2"
    assert claims["beats_baseline"]["extra"] == "ratio of the means 1.92x"
    line = describe(claims["beats_baseline"])
    assert line.startswith("**MRAE beats the best single-level baseline** (paper: 5.0 vs 2.6 AP, "
                           "1.9x): **held (at the paper's size)**.")
    assert "MRAE template 2 5.00 ± 0.10 (3 seeds) vs single C2 2.60 ± 0.10 (3 seeds)" in line
    assert "difference +2.40, ratio 1.92x, 95% CI 1.84-2.01 (paired by seed; unpaired Welch" in line
    assert "paper 1.92x, Welch p < 0.001" in line
    # Template 2 against each of templates 1 and 3.
    assert [(c["a"], c["b"]) for c in claims["template_2_best"]["comparisons"]] == [
        ("MRAE template 2", "MRAE template 1"), ("MRAE template 2", "MRAE template 3")]
    # Soft is tested against the best baseline, and reported beside the mean one.
    soft = claims["soft_barely_learns"]
    assert (soft["comparisons"][0]["a"], soft["comparisons"][0]["b"]) == ("single C2", "soft")
    assert soft["extra"] == "mean single level 2.43 AP"


def test_the_mixed_row_is_judged_against_equal_steps_and_reported_as_the_paper_did(paper_like):
    claim = _claims(paper_like)["mixed_hurts"]
    equal, paper = claim["comparisons"]
    assert (equal["a"], equal["b"], equal["decisive"]) == ("MRAE template 2, long", "MRAE template 1 -> 2 (mixed)", True)
    assert (paper["a"], paper["decisive"]) == ("MRAE template 2", False)
    line = describe(claim)
    assert "AP, equal total steps (held (at the paper's size)): MRAE template 2, long 5.20 ± 0.10 (3 seeds) vs" in line
    assert "AP as the paper compared them, the mixed row training longer (held (at the paper's size))" in line
    # The verdict is the equal-steps one: a longer control that ties the mixed row within a few
    # percent shows the paper's 1.43x is not there, and no direction either.
    rows = [r for r in paper_like if r["role"] != "mrae_long"]
    rows.append({**paper_like[-1], "runs": [{"AP": a / 100} for a in (3.4, 3.6, 3.5)]})
    assert _claims(rows)["mixed_hurts"]["verdict"] == NOT_PAPER_SIZE


def test_losses_are_called_so(row):
    rows = [row("single C1", "baseline", [3.0, 3.1, 2.9]), row("MRAE template 2", "mrae", [1.0, 1.1, 0.9]),
            row("soft", "soft", [4.0, 4.2, 3.9])]
    claims = _claims(rows)
    assert claims["beats_baseline"]["verdict"] == NOT_HELD
    assert claims["soft_barely_learns"]["verdict"] == NOT_HELD  # soft above the best baseline


def test_overlapping_seeds_leave_a_claim_undecided(row):
    rows = [row("single C1", "baseline", [3.0, 4.0, 2.0]), row("MRAE template 2", "mrae", [3.5, 2.5, 4.5])]
    claim = _claims(rows)["beats_baseline"]
    assert claim["verdict"] == UNDECIDED and claim["comparisons"][0]["p"] > 0.05
    assert ": **undecided**." in describe(claim)


def test_one_seed_means_no_test(row):
    rows = [row("single C1", "baseline", [2.0, 2.1, 1.9]), row("MRAE template 2", "mrae", [9.0])]
    claim = _claims(rows)["beats_baseline"]
    assert claim["verdict"] == UNDECIDED
    line = describe(claim)
    assert "MRAE template 2 9.00 (1 seed)" in line
    assert "no interval: it needs at least 2 seeds on each side" in line
    assert "Welch p" not in line


def test_rows_that_did_not_learn_decide_nothing(row):
    rows = [row("single C1", "baseline", [0.0, 0.01, 0.0]), row("MRAE template 2", "mrae", [3.0, 3.1, 2.9]),
            row("soft", "soft", [0.0, 0.0, 0.01])]
    claims = _claims(rows)
    assert claims["beats_baseline"]["verdict"] == UNDECIDED
    assert "single C1 did not learn" in claims["beats_baseline"]["comparisons"][0]["note"]
    assert claims["beats_baseline"]["extra"] == "ratio of the means 900.00x"
    # Soft staying near zero is the claim itself, but a baseline at zero cannot show it.
    assert claims["soft_barely_learns"]["verdict"] == UNDECIDED
    assert "single C1 did not learn" in claims["soft_barely_learns"]["comparisons"][0]["note"]


def test_rows_are_found_by_role_and_template_never_by_name(paper_like):
    renamed = [{**entry, "name": f"row {i}"} for i, entry in enumerate(paper_like)]
    before, after = _claims(paper_like), _claims(renamed)
    assert {k: c["verdict"] for k, c in before.items()} == {k: c["verdict"] for k, c in after.items()}
    # A template-2 row without role mrae is not MRAE template 2.
    rows = [entry for entry in paper_like if entry["name"] != "MRAE template 2"]
    rows.append({**paper_like[5], "role": "mrae_spatial"})
    assert _claims(rows)["beats_baseline"]["verdict"] is None


def test_the_convergence_claim_reads_the_curves_at_half_the_schedule(row):
    fast = [[[50, 0.04], [100, 0.05]], [[50, 0.041], [100, 0.05]], [[50, 0.039], [100, 0.05]]]
    slow = [[[50, 0.01], [100, 0.05]], [[50, 0.011], [100, 0.05]], [[50, 0.009], [100, 0.05]]]
    rows = [row("single C1", "baseline", [5.0, 5.0, 5.1], curves=slow),
            row("MRAE template 2", "mrae", [5.0, 5.1, 5.0], curves=fast)]
    claims = _claims(rows)
    assert claims["beats_baseline"]["verdict"] == NOT_PAPER_SIZE  # the same final AP, tight
    converge = claims["converges_faster"]
    assert converge["verdict"] == HELD_DIRECTION and converge["comparisons"][0]["paper_ratio"] is None
    assert converge["comparisons"][0]["mean_a"] == pytest.approx(4.0)
    assert converge["comparisons"][0]["mean_b"] == pytest.approx(1.0)
    rows[1]["curves"] = slow
    rows[0]["curves"] = fast
    assert _claims(rows)["converges_faster"]["verdict"] == NOT_HELD


def test_runs_evaluated_only_at_the_end_do_not_judge_convergence(row):
    """The final AP is no stand-in for the AP at half the schedule."""
    end_only = [[[150, 0.2]], [[150, 0.21]], [[150, 0.19]]]
    rows = [row("single C2", "baseline", [2.0, 2.1, 1.9], curves=end_only),
            row("MRAE template 2", "mrae", [5.0, 5.1, 5.0], curves=end_only)]
    claim = _claims(rows)["converges_faster"]
    assert claim["verdict"] is None and claim["comparisons"] == []
    assert "not judged: the study has no evaluation partway through the schedule" in describe(claim)


def test_missing_rows_are_said_so_and_not_judged(row):
    lines = discuss([row("single C1", "baseline", [2.0, 2.1])])
    assert ("**MRAE beats the best single-level baseline** (paper: 5.0 vs 2.6 AP, 1.9x): not judged: "
            "the study has no finished row of role mrae with template 2.") in lines
    assert "not judged: the study has no finished row of role fpn_all_anchors and row of role mrae" in \
        _line(lines, "every anchor size")


def test_a_claim_tells_rows_the_study_does_not_run_from_rows_not_finished_yet(row):
    rows = [row("single C1", "baseline", [2.0, 2.1]), row("MRAE template 2", "mrae", [3.0, 3.1])]
    complete = discuss(rows, pending=[])
    assert "not judged: the study file has no row of role soft." in _line(complete, "Soft attention")
    assert "not judged: the study file has no rows of role fusion." in _line(complete, "simple fusions")
    # a sum row and template 1 still training: their claims wait; soft is not in the study file
    pending = [{"name": "sum", "role": "fusion", "model": {"extractor": "sum", "detector": "faster_rcnn"},
                "seeds": [0, 1]},
               {"name": "MRAE template 1", "role": "mrae", "model": {"template": 1}, "seeds": [2]}]
    running = discuss(rows, pending=pending)
    assert ("not judged: its rows have not all finished yet (3 runs of the study pending)."
            in _line(running, "simple fusions"))
    assert "not judged: its rows have not all finished yet" in _line(running, "best template")
    assert "not judged: the study file has no row of role soft." in _line(running, "Soft attention")
    # results written before the pending runs were counted: the old words
    assert "the study has no finished row of role soft" in _line(discuss(rows), "Soft attention")


def test_a_row_whose_every_seed_diverged_is_reported_and_left_out_of_the_verdicts(row):
    diverged = {**row("MRAE template 2", "mrae", []), "diverged": {"0": "training diverged at step 7"}}
    lines = discuss([row("single C1", "baseline", [2.0, 2.2]), diverged])
    assert "not judged" in _line(lines, "best single-level baseline")
    assert ("**MRAE template 2, seed 0 diverged** and is reported as such: training diverged at step 7"
            in lines)


def test_the_attention_observation_uses_each_rows_template_and_includes_soft(row):
    t1 = row("MRAE template 1", "mrae", [3.0], template=1, attention=[0.6, 0.2, 0.2])
    mixed = row("t1 then t2", "mixed", [3.0], template=2, attention=[0.5, 0.3, 0.2])
    soft = row("soft", "soft", [1.0], attention=[0.3, 0.3, 0.4])
    lines = discuss([t1, mixed, soft])
    line = _line(lines, "Where MRAE looks")
    # The mixed run ends with template 2, but C1 still leads: one row of two.
    assert "in 1 of 2 MRAE rows" in line
    assert "MRAE template 1 0.60/0.20/0.20" in line
    assert "**Where soft attention looks**: mean C1/C2/C3 weights of soft 0.30/0.30/0.40." in lines


def test_mrae_against_the_simple_fusions_needs_every_fusion_row(paper_like, row):
    def fusion(name, aps):
        entry = row(name, "fusion", aps)
        entry["model"]["extractor"] = name
        return entry

    behind = paper_like + [fusion("concat", [3.0, 3.1, 3.2]), fusion("sum", [3.3, 3.2, 3.4])]
    claim = _claims(behind)["vs_fusions"]
    assert claim["verdict"] == HELD_DIRECTION
    assert [c["b"] for c in claim["comparisons"]] == ["concat", "sum"]
    # One fusion ahead of MRAE (as sum is on the synthetic benchmark): the claim did not hold.
    ahead = paper_like + [fusion("concat", [3.0, 3.1, 3.2]), fusion("sum", [5.6, 5.5, 5.7])]
    assert _claims(ahead)["vs_fusions"]["verdict"] == NOT_HELD
    missing = _claims(paper_like)["vs_fusions"]
    assert missing["verdict"] is None and "rows of role fusion" in missing["missing"]
