"""The paper's claims, each judged on the ratio of two rows' AP over seeds, against the paper's ratio.

A claim "A beats B (by the paper's ratio P)" is judged with :mod:`mrae.apps.study.effect`: a 95%
interval for AP(A) / AP(B) on log AP, paired by seed where both rows ran the same seeds (a seed's
batches are the same in every row), and one of five verdicts: **held (at the paper's size)**,
**held but smaller than the paper's**, **did not hold (the other direction)**, **not at the paper's
size** (the interval includes 1 but excludes P) and **undecided** (it includes both). A claim the
paper makes without a number is held, did not hold or undecided by whether the interval excludes 1.
A side with fewer than 2 seeds gives no interval (undecided), and a row that did not learn (mean
AP under ``LEARNED_AP``) decides nothing. Welch's t-test p-value is kept beside each comparison for
readers who think in p-values; it decides nothing.

Rows are found by their ``role`` and by the ``model`` settings of their config (``template``,
``detector``), never by name. The paper's claims are judged on the Faster R-CNN rows (the paper's
host); the host study (issue 18: does the ordering hold in one-stage hosts?) judges the same
orderings on each other host's rows alone (:func:`host_claims`). Everything here works on the
summary entries of :mod:`mrae.apps.study.summary` (or the ``rows`` of ``results.json``; an entry
without ``model.detector``, written before hosts were recorded, is a Faster R-CNN row), so the
verdicts can be recomputed from the JSON alone.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

from mrae.apps.study.effect import (
    HELD,
    NOT_HELD,
    NOT_PAPER_SIZE,
    SMALLER,
    UNDECIDED,
    ratio_verdict,
)

LEARNED_AP = 0.1  # AP points (x100): a row whose mean AP is below this did not learn
MRAE_ROLES = ("mrae", "mrae_spatial", "mixed", "mrae_long")  # rows with a template
# The paper's ratios (Tables 2 and 3), favoured row over the other.
PAPER_T2_VS_BASELINE = 5.0 / 2.6
PAPER_T2_VS_T1, PAPER_T2_VS_T3 = 5.0 / 3.6, 5.0 / 3.6
PAPER_BASELINE_VS_SOFT = 2.6 / 0.04
PAPER_T2_VS_MIXED = 5.0 / 3.5
HALF = "AP at half the schedule"
PAPER_HOST = "faster_rcnn"
ONE_STAGE_HOSTS = ("retinanet", "fcos")  # the host study's hosts, in the page's order
HOST_NAMES = {"faster_rcnn": "Faster R-CNN", "retinanet": "RetinaNet", "fcos": "FCOS"}

Entry = dict[str, Any]
BASELINE, T2 = "row of role baseline", "row of role mrae with template 2"


# ------------------------------------------------------------------------------ the numbers


def ap_values(entry: Entry) -> dict[int, float]:
    """The final AP (x100) of each seed that finished, by seed."""
    return {seed: 100 * r["AP"] for seed, r in zip(entry["seeds"], entry["runs"], strict=True)
            if r.get("AP") is not None}


def mean_ap(entry: Entry) -> float:
    values = list(ap_values(entry).values())
    return sum(values) / len(values) if values else 0.0


def ap_at_fraction(curve: list, fraction: float) -> float | None:
    """AP (x100) at the first evaluation at or after `fraction` of the run's last evaluated step;
    None when that is the last evaluation itself (a run evaluated only at its end has no value
    partway through, and its final AP must not stand in for one)."""
    if not curve:
        return None
    target = fraction * curve[-1][0]
    step, value = next((s, v) for s, v in curve if s >= target)
    return None if step == curve[-1][0] and fraction < 1 else 100 * value


def half_schedule_values(entry: Entry) -> dict[int, float]:
    """AP (x100) at half the schedule, by seed, for the seeds with an evaluation there."""
    values = {seed: ap_at_fraction(curve, 0.5)
              for seed, curve in zip(entry["seeds"], entry["curves"], strict=False)}
    return {seed: v for seed, v in values.items() if v is not None}


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n if n else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Welch's two-sided t-test p-value of A vs B; None under 2 values a side or without spread."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: a precision warning
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def compare(a: Entry, b: Entry, paper: float | None, label: str = "AP",
            values: Callable[[Entry], dict[int, float]] = ap_values, exempt: tuple[str, ...] = (),
            decisive: bool = True) -> dict[str, Any]:
    """Row `a` ahead of row `b` on `values` (per seed), and by the paper's ratio `paper`? Rows
    named in `exempt` may have not learned."""
    va, vb = values(a), values(b)
    (mean_a, std_a), (mean_b, std_b) = _mean_std(list(va.values())), _mean_std(list(vb.values()))
    result = {"a": a["name"], "b": b["name"], "label": label, "decisive": decisive,
              "n_a": len(va), "n_b": len(vb), "mean_a": mean_a, "std_a": std_a, "mean_b": mean_b,
              "std_b": std_b, "diff": mean_a - mean_b, "p": welch_p(list(va.values()), list(vb.values())),
              **ratio_verdict(va, vb, paper)}
    idle = [e["name"] for e in (a, b) if e["name"] not in exempt and mean_ap(e) < LEARNED_AP]
    if idle:
        result["verdict"] = UNDECIDED
        result["note"] = (f"{' and '.join(idle)} did not learn (mean AP under {LEARNED_AP}), "
                          "so the comparison decides nothing")
    return result


def combine(comparisons: list[dict[str, Any]]) -> str | None:
    """One verdict for a claim that needs every decisive comparison: did not hold if one did;
    held (at the paper's size) if all did; held but smaller if every one held in direction and one
    falls short of the paper's ratio; not at the paper's size if one is open in direction and one
    excludes the paper's ratio; undecided otherwise."""
    verdicts = [c["verdict"] for c in comparisons if c["decisive"]]
    if not verdicts:
        return None
    if NOT_HELD in verdicts:
        return NOT_HELD
    if all(v == verdicts[0] for v in verdicts):
        return verdicts[0]
    if all(v in (HELD, SMALLER) for v in verdicts):
        return SMALLER
    if any(v in (SMALLER, NOT_PAPER_SIZE) for v in verdicts):
        return NOT_PAPER_SIZE
    return UNDECIDED


# ------------------------------------------------------------------------------ the claims


def host_of(entry: Entry) -> str:
    """The row's host (``model.detector``); Faster R-CNN for an entry written before it was kept."""
    return entry.get("model", {}).get("detector", PAPER_HOST)


def find(rows: list[Entry], role: str, **model: Any) -> list[Entry]:
    """The rows of `role` (with these model settings; ``detector`` defaults to the paper's host)
    that have a finished, non-diverged run."""
    model = {"detector": PAPER_HOST, **model}
    return [e for e in rows if e.get("role") == role and e["seeds"]
            and all((host_of(e) if k == "detector" else e.get("model", {}).get(k)) == v
                    for k, v in model.items())]


def _first(rows: list[Entry], role: str, **model: Any) -> Entry | None:
    found = find(rows, role, **model)
    return found[0] if found else None


def _claim(key: str, title: str, paper: str, comparisons: list, missing: str | None = None,
           extra: str | None = None) -> dict[str, Any]:
    return {"id": key, "title": title, "paper": paper, "verdict": None if missing else combine(comparisons),
            "comparisons": comparisons, "missing": missing, "extra": extra}


def judge(rows: list[Entry], hosts: list[str] | tuple[str, ...] = ONE_STAGE_HOSTS,
          pending: list[dict] | None = None) -> list[dict[str, Any]]:
    """Every claim of the paper, judged on the Faster R-CNN rows (see the module's docstring for
    the rule), then the host study's claims for each of `hosts` other than Faster R-CNN, each
    with ``lacking`` where `pending` is given (:func:`with_lacking`)."""
    return with_lacking(paper_claims, rows, pending) + [
        c for host in hosts if host != PAPER_HOST
        for c in with_lacking(functools.partial(host_claims, host=host), rows, pending)]


def with_lacking(claims_of: Callable[[list[Entry]], list[dict[str, Any]]], rows: list[Entry],
                 pending: list[dict] | None) -> list[dict[str, Any]]:
    """``claims_of(rows)``; where `pending` (``results.json``'s runs without a result) is given,
    each claim not judged gets ``lacking``: the rows the study file itself does not have
    (:func:`lacking_rows`), None where they are only not finished (and every judged claim None)."""
    claims = claims_of(rows)
    if pending is not None:
        lacking = lacking_rows(rows, pending, claims_of)
        for claim in claims:
            claim["lacking"] = lacking.get(claim["id"]) if claim["verdict"] is None else None
    return claims


def pending_count(pending: list[dict] | None) -> int | None:
    """The runs in ``results.json``'s ``pending`` (None where it is unknown)."""
    return None if pending is None else sum(len(p["seeds"]) for p in pending)


def paper_claims(rows: list[Entry]) -> list[dict[str, Any]]:
    """The paper's claims, judged on the rows of the paper's host (Faster R-CNN)."""
    baselines = find(rows, "baseline")
    best = max(baselines, key=mean_ap) if baselines else None
    t2 = _first(rows, "mrae", template=2)
    claims = []

    title, paper = "MRAE beats the best single-level baseline", "5.0 vs 2.6 AP, 1.9x"
    if best and t2:
        ratio = (f"{mean_ap(t2) / mean_ap(best):.2f}x" if mean_ap(best) > 0
                 else "undefined (baseline at 0)")
        claims.append(_claim("beats_baseline", title, paper, [compare(t2, best, PAPER_T2_VS_BASELINE)],
                             extra=f"ratio of the means {ratio}"))
    else:
        claims.append(_claim("beats_baseline", title, paper, [], missing=_missing({BASELINE: best, T2: t2})))

    title = "MRAE converges faster than the best baseline"
    paper = "MRAE grows AP rapidly, with fewer steps; no number for it"
    if best and t2 and not (half_schedule_values(best) and half_schedule_values(t2)):
        claims.append(_claim("converges_faster", title, paper, [],
                             missing="evaluation partway through the schedule (its runs were "
                             "evaluated only at the end: train.eval_every covers the whole schedule)"))
    elif best and t2:
        comparison = compare(t2, best, None, HALF, half_schedule_values)
        claims.append(_claim("converges_faster", title, paper, [comparison]))
    else:
        claims.append(_claim("converges_faster", title, paper, [], missing=_missing({BASELINE: best, T2: t2})))

    title, paper = "Template 2 is the best template", "3.6 / 5.0 / 3.6 AP for templates 1 / 2 / 3"
    others = [e for t in (1, 3) if (e := _first(rows, "mrae", template=t))]
    if t2 and others:
        ratios = {1: PAPER_T2_VS_T1, 3: PAPER_T2_VS_T3}
        claims.append(_claim("template_2_best", title, paper,
                             [compare(t2, e, ratios[e["model"]["template"]]) for e in others]))
    else:
        claims.append(_claim("template_2_best", title, paper, [], missing=_missing(
            {T2: t2, "row of role mrae with template 1 or 3": others[0] if others else None})))

    title, paper = "Soft attention barely learns: well below the baselines", "0.04 AP vs 2.3 to 2.6"
    soft = _first(rows, "soft")
    if soft and best:
        mean_single = sum(mean_ap(e) for e in baselines) / len(baselines)
        claims.append(_claim("soft_barely_learns", title, paper,
                             [compare(best, soft, PAPER_BASELINE_VS_SOFT, exempt=(soft["name"],))],
                             extra=f"mean single level {mean_single:.2f} AP"))
    else:
        claims.append(_claim("soft_barely_learns", title, paper, [], missing=_missing({BASELINE: best, "row of role soft": soft})))

    claims.append(_mixed_claim(rows))
    title = "MRAE beats the simple fusions (concatenation, element-wise sum)"
    paper = "not in its tables; Fig. 2 shows them as what MRAE differs from"
    fusions = find(rows, "fusion")
    if fusions and t2:
        claims.append(_claim("vs_fusions", title, paper, [compare(t2, e, None) for e in fusions]))
    else:
        claims.append(_claim("vs_fusions", title, paper, [],
                             missing=_missing({"rows of role fusion": fusions[0] if fusions else None, T2: t2})))
    for role, title in (("fpn", "MRAE beats FPN"),
                        ("fpn_all_anchors", "MRAE beats FPN with every anchor size on every map")):
        fpn = _first(rows, role)
        paper = "not in its tables; Fig. 1(d) shows FPN as the alternative"
        if fpn and t2:
            speed = f"inference {_ms(t2):.0f} vs {_ms(fpn):.0f} ms/image" if _ms(t2) and _ms(fpn) else None
            claims.append(_claim(f"vs_{role}", title, paper, [compare(t2, fpn, None)], extra=speed))
        else:
            claims.append(_claim(f"vs_{role}", title, paper, [], missing=_missing({f"row of role {role}": fpn, T2: t2})))
    return claims


def host_claims(rows: list[Entry], host: str) -> list[dict[str, Any]]:
    """Does the ordering hold in `host`? On that host's rows alone: MRAE template 2 beats the best
    single level (at the paper's ratio, as the first claim) and beats sum (direction only: the
    paper gives no number for sum). Each claim has ``host``; its ``extra`` gives the ratio of the
    means beside the same rows' ratio in Faster R-CNN."""
    name = HOST_NAMES.get(host, host)
    baselines = find(rows, "baseline", detector=host)
    best = max(baselines, key=mean_ap) if baselines else None
    t2 = _first(rows, "mrae", detector=host, template=2)
    fused = _first(rows, "fusion", detector=host, extractor="sum")
    paper_best = max(find(rows, "baseline"), key=mean_ap, default=None)
    paper_t2, paper_sum = _first(rows, "mrae", template=2), _first(rows, "fusion", extractor="sum")
    where = f" in {name}"
    claims = []
    title, paper = f"{name}: MRAE beats the best single-level baseline", "5.0 vs 2.6 AP, 1.9x, in Faster R-CNN"
    if best and t2:
        claims.append(_claim(f"{host}_beats_baseline", title, paper,
                             [compare(t2, best, PAPER_T2_VS_BASELINE)],
                             extra=_ratios(t2, best, paper_t2, paper_best)))
    else:
        claims.append(_claim(f"{host}_beats_baseline", title, paper, [],
                             missing=_missing({f"row of role baseline{where}": best, T2 + where: t2})))
    title, paper = f"{name}: MRAE beats sum", "not in its tables; Fig. 2 shows the fusions as the alternative"
    if fused and t2:
        claims.append(_claim(f"{host}_vs_sum", title, paper, [compare(t2, fused, None)],
                             extra=_ratios(t2, fused, paper_t2, paper_sum)))
    else:
        claims.append(_claim(f"{host}_vs_sum", title, paper, [],
                             missing=_missing({f"row of role fusion (sum){where}": fused, T2 + where: t2})))
    for claim in claims:
        claim["host"] = host
    return claims


def _ratios(a: Entry, b: Entry, paper_a: Entry | None, paper_b: Entry | None) -> str:
    """``ratio of the means 1.23x (Faster R-CNN's MRAE template 2 vs single C2: 1.10x)``: A/B, and
    the same comparison in Faster R-CNN where both of its rows ran."""
    def ratio(x: Entry, y: Entry) -> str:
        return f"{mean_ap(x) / mean_ap(y):.2f}x" if mean_ap(y) > 0 else "undefined (at 0 AP)"

    text = f"ratio of the means {ratio(a, b)}"
    if paper_a and paper_b:
        text += f" (Faster R-CNN's {paper_a['name']} vs {paper_b['name']}: {ratio(paper_a, paper_b)})"
    return text


def _mixed_claim(rows: list[Entry]) -> dict[str, Any]:
    title = "Switching templates mid-training hurts"
    paper = "3.5 AP mixed, 1311k steps in all, vs 5.0 template 2, 1100k steps"
    mixed = _first(rows, "mixed")
    if not mixed:
        return _claim("mixed_hurts", title, paper, [], missing="row of role mixed")
    template = mixed.get("model", {}).get("template")
    long = _first(rows, "mrae_long", template=template)
    plain = _first(rows, "mrae", template=template)
    comparisons = []
    if long:
        comparisons.append(compare(long, mixed, PAPER_T2_VS_MIXED, "AP, equal total steps"))
    if plain:
        comparisons.append(compare(plain, mixed, PAPER_T2_VS_MIXED, "AP as the paper compared them, the mixed row "
                                   "training longer", decisive=not long))
    if not comparisons:
        return _claim("mixed_hurts", title, paper, [],
                      missing=f"row of role mrae_long or mrae with template {template}")
    return _claim("mixed_hurts", title, paper, comparisons)


def _missing(wanted: dict[str, Entry | None]) -> str:
    """The rows (described by the keys) that were not found."""
    return " and ".join(what for what, found in wanted.items() if not found)


def _ms(entry: Entry) -> float | None:
    """Inference ms/image: the quiet measurement after training where there is one."""
    return entry.get("ms_per_image") or entry.get("mean", {}).get("ms_per_image")


# ------------------------------------------------------------------------------ rows not run


def _as_finished(pending: dict[str, Any]) -> Entry:
    """A row with runs pending (``results.json``'s ``pending``: name, role, model, seeds) as if
    they had finished, for finding rows only: its numbers are placeholders, never judged."""
    seeds = list(pending["seeds"])
    return {"name": pending["name"], "role": pending.get("role"), "model": pending.get("model") or {},
            "seeds": seeds, "runs": [{"AP": 0.5} for _ in seeds],
            "curves": [[[1, 0.5], [2, 0.5]] for _ in seeds], "attention": None, "diverged": {}}


def lacking_rows(rows: list[Entry], pending: list[dict] | None,
                 claims: Callable[[list[Entry]], list[dict[str, Any]]]) -> dict[str, str | None]:
    """For each claim of ``claims(rows)``, the rows the study file itself lacks (the claim's
    ``missing`` with every pending run counted as finished), None where it has them all; empty
    where `pending` is unknown."""
    if pending is None:
        return {}
    names = {e["name"] for e in rows}
    planned = rows + [_as_finished(p) for p in pending if p["name"] not in names]
    return {c["id"]: c["missing"] for c in claims(planned)}
