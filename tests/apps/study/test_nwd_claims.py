"""The NWD comparison (issue 33) as rows of the claims table: NWD beats IoU extractor by extractor
(each NWD row against the IoU row of its extractor, paired by seed), MRAE's order under NWD beside
IoU's, rows not yet run said so, and the trunk each comparison's runs began from; on small fake
summaries and results."""

from __future__ import annotations

from mrae.apps.study.claims import judge
from mrae.apps.study.discussion import describe
from mrae.apps.study.effect import HELD, NOT_HELD, SMALLER
from mrae.apps.study.report import render_page
from mrae.apps.study.sections import nwd_section, trunk_of_comparison

TRUNK = {"pretrained": "synthetic", "sha256": "b276ada8141fe852"}
SPREAD = (-0.2, 0.0, 0.2)


def _row(row, name: str, role: str, ap: float, similarity: str, trunk: dict | None = TRUNK, **model) -> dict:
    """`row` (the conftest's summary entry) with 3 seeds around `ap`, its box similarity and trunk."""
    entry = row(name, role, [ap + d for d in SPREAD], **model)
    entry["model"]["box_similarity"] = similarity
    if role == "fusion":
        entry["model"]["extractor"] = "sum"
    for run in entry["runs"]:
        run["trunk"] = trunk
    return entry


def _study(row, nwd_gain: float = 1.8, mrae_nwd: float | None = None) -> list[dict]:
    """IoU rows as the synthetic study has them (single C2 44, MRAE 52, sum 55) and their NWD twins."""
    iou = [_row(row, "single C2", "baseline", 44.0, "iou", level=2), _row(row, "MRAE template 2", "mrae", 52.0, "iou"),
           _row(row, "sum", "fusion", 55.0, "iou")]
    nwd = [_row(row, "single C2, NWD", "baseline", 44.0 * nwd_gain, "nwd", level=2),
           _row(row, "MRAE template 2, NWD", "mrae", mrae_nwd or 52.0 * nwd_gain, "nwd"),
           _row(row, "sum, NWD", "fusion", 55.0 * nwd_gain, "nwd")]
    return iou + nwd


def _claims(rows: list[dict], pending: list[dict] | None = None) -> dict[str, dict]:
    return {c["id"]: c for c in judge(rows, ["faster_rcnn"], pending)}


def test_each_nwd_row_is_judged_against_the_iou_row_of_its_extractor(row):
    claims = _claims(_study(row))
    for key, (a, b) in {"single": ("single C2, NWD", "single C2"),
                        "mrae": ("MRAE template 2, NWD", "MRAE template 2"),
                        "fusion": ("sum, NWD", "sum")}.items():
        claim = claims[f"nwd_beats_iou_{key}"]
        assert claim["verdict"] == HELD, key  # 1.8x against the NWD paper's 1.7x
        assert claim["similarity"] == "nwd"
        (comparison,) = claim["comparisons"]
        assert (comparison["a"], comparison["b"]) == (a, b)
        assert comparison["interval"]["method"] == "paired"
    # the paper's claims stay on the IoU rows: the NWD rows (higher AP) never stand in for them
    assert claims["beats_baseline"]["comparisons"][0]["a"] == "MRAE template 2"
    assert claims["beats_baseline"]["comparisons"][0]["b"] == "single C2"
    assert [c["b"] for c in claims["vs_fusions"]["comparisons"]] == ["sum"]
    # smaller than NWD's paper, and the other direction
    assert _claims(_study(row, nwd_gain=1.2))["nwd_beats_iou_single"]["verdict"] == SMALLER
    assert _claims(_study(row, nwd_gain=0.8))["nwd_beats_iou_mrae"]["verdict"] == NOT_HELD


def test_mraes_order_under_nwd_is_judged_on_the_nwd_rows_beside_ious(row):
    claims = _claims(_study(row, mrae_nwd=52.0 * 1.8 * 0.8))  # under NWD, MRAE falls further behind sum
    beats, vs_sum = claims["nwd_beats_baseline"], claims["nwd_vs_sum"]
    assert beats["title"] == "NWD: MRAE beats the best single-level baseline"
    assert beats["paper"] == "5.0 vs 2.6 AP, 1.9x, with IoU assignment"
    assert (beats["comparisons"][0]["a"], beats["comparisons"][0]["b"]) == ("MRAE template 2, NWD", "single C2, NWD")
    assert beats["extra"] == "ratio of the means 0.95x (IoU's MRAE template 2 vs single C2: 1.18x)"
    assert vs_sum["verdict"] == NOT_HELD and claims["vs_fusions"]["verdict"] == NOT_HELD
    assert "host" not in beats


def test_a_study_without_nwd_rows_has_no_nwd_claims(paper_like):
    assert not [c for c in judge(paper_like) if c["id"].startswith("nwd")]


def test_nwd_rows_not_run_yet_are_said_so_and_never_crash(row):
    iou = _study(row)[:3]
    # the NWD rows are in the study file but none has finished
    pending = [{"name": f"{e['name']}, NWD", "role": e["role"], "model": {**e["model"], "box_similarity": "nwd"},
                "seeds": [0, 1, 2]} for e in iou]
    claims = _claims(iou, pending)
    for key in ("nwd_beats_iou_single", "nwd_beats_iou_mrae", "nwd_beats_iou_fusion", "nwd_beats_baseline",
                "nwd_vs_sum"):
        assert claims[key]["verdict"] is None and claims[key]["lacking"] is None, key
        assert "not judged: its rows have not all finished yet (9 runs of the study pending)" in describe(
            claims[key], 9)
    # the study file has NWD rows but no NWD sum: that claim is not run at all, and says which row
    claims = _claims(iou, pending[:2])
    assert claims["nwd_beats_iou_fusion"]["lacking"] == "rows of role fusion under NWD"
    assert "the study file has no rows of role fusion under NWD" in describe(claims["nwd_beats_iou_fusion"], 6)
    # an NWD row whose IoU twin is missing names the twin
    lone = _claims([_study(row)[3], _study(row)[1]])["nwd_beats_iou_single"]
    assert lone["verdict"] is None and lone["missing"] == "row of role baseline at level C2 under IoU"


def test_the_page_sets_each_extractor_side_by_side_and_names_each_comparisons_trunk(results, row):
    rows = _study(row)
    rows[4]["runs"][2]["trunk"] = {"pretrained": "synthetic", "sha256": "0123456789abcdef"}
    page_results = {**results, "rows": rows, "pending": [], "claims": judge(rows, ["faster_rcnn"], [])}
    lines = nwd_section(page_results)
    text = "\n".join(lines)
    assert lines[0] == "## NWD assignment against IoU"
    assert "| MRAE template 2 | MRAE template 2: 52.0 ± 0.2 (3 seeds) | MRAE template 2, NWD: 93.6 ± 0.2" in text
    assert "- **NWD assignment beats IoU with a single level** (paper: Wang et al. 2021: Faster R-CNN on AI-TOD-v2" in text
    assert "| MRAE beats sum | **did not hold (the other direction)** | **did not hold (the other direction)** | yes |" in text
    assert "- single C2, NWD / single C2: trunk `b276ada8141fe852` (6 runs)" in text
    assert ("- MRAE template 2, NWD / MRAE template 2: several trunks, so the comparison compares trunks "
            "too (MRAE template 2, NWD: `b276ada8141fe852` (2 runs), `0123456789abcdef` (1 run); "
            "MRAE template 2: `b276ada8141fe852` (3 runs))") in text
    page = render_page(page_results, "c.png", None)
    assert "## NWD assignment against IoU" in page
    # a page without NWD rows has no such section
    assert nwd_section({**results, "pending": []}) == []


def test_a_comparisons_trunk_unrecorded_is_said_so(row):
    rows = [_row(row, "a", "baseline", 40.0, "nwd", trunk=None), _row(row, "b", "baseline", 30.0, "iou", trunk=None)]
    assert trunk_of_comparison(rows, "a", "b") == "a / b: trunk not recorded (6 runs)"


def test_the_comparison_with_another_trunks_study_has_its_own_heading(results):
    from mrae.apps.study.compare import comparison_section

    spec = {"results": "docs/results_hituav.json", "this": "synthetic trunk", "other": "dataset trunk",
            "title": "Do the HIT-UAV verdicts hold on the synthetic trunk?"}
    lines = comparison_section({**results, "compare": spec}, None)
    assert lines[0] == "## Do the HIT-UAV verdicts hold on the synthetic trunk?"
    assert "The dataset trunk study's results (`docs/results_hituav.json`) are not there" in lines[2]
