"""The results page's breakdowns (mrae.apps.study.breakdowns): each section only where the rows'
metrics hold it, the numbers as mean ± spread x100."""

from __future__ import annotations

from mrae.apps.study.breakdowns import breakdown_sections
from mrae.apps.study.report import render_page


def with_metrics(entry: dict, **values: float) -> dict:
    entry["mean"].update(values)
    entry["std"].update({k: 0.01 for k in values})
    return entry


def test_no_section_without_their_metrics(results):
    assert breakdown_sections(results) == []
    page = render_page(results, "c.png", None)
    assert "error breakdown" not in page and "AP per condition" not in page


def test_the_three_sections_from_the_rows_metrics(results, row):
    tide = {"TIDE_AP50": 0.5, "dAP_cls": 0.068, "dAP_loc": 0.018, "dAP_both": 0.007,
            "dAP_dupl": 0.003, "dAP_bkg": 0.033, "dAP_miss": 0.021}
    groups = {"AP[light=0]": 0.40, "AP[light=1]": 0.20, "images[light=0]": 10.0, "images[light=1]": 12.0}
    buckets = {"AP_verytiny": 0.07, "AP_tiny": 0.44, "AP_small": 0.56, "AP_medium": 0.53, "AP@1500": 0.41}
    rows = [with_metrics(row("MRAE template 2", "mrae", [40.0, 42.0]), **tide, **groups, **buckets),
            with_metrics(row("single C2", "baseline", [30.0, 31.0]), **tide),
            row("sum", "fusion", [41.0])]
    lines = breakdown_sections({**results, "rows": rows})
    text = "\n".join(lines)
    assert "## AP by object size (AI-TOD's buckets)" in text
    assert "| MRAE template 2 | 41.0 ± 1.4 | 7.0 ± 1.0 | 44.0 ± 1.0 | 56.0 ± 1.0 | 53.0 ± 1.0 | 41.0 ± 1.0 |" in text
    assert "AP@1500" in text
    assert "## Why AP is low: the error breakdown" in text
    assert "| single C2 | 50.0 ± 1.0 | 6.8 ± 1.0 | 1.8 ± 1.0 | 0.7 ± 1.0 | 0.3 ± 1.0 | 3.3 ± 1.0 | 2.1 ± 1.0 |" in text
    assert "| row | light 0 (10 img) | light 1 (12 img) |" in text
    assert "| MRAE template 2 | 40.0 ± 1.0 | 20.0 ± 1.0 |" in text
    assert "| sum |" not in text  # a row without any of these metrics is in none of the tables
    page = render_page({**results, "rows": rows}, "c.png", None)
    assert page.index("## Why AP is low") < page.index("## Convergence")
