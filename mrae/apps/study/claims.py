"""The paper's claims, each judged against the spread over seeds.

A claim "A beats B" is tested with Welch's t-test on the per-seed APs (x100) of the two rows
(``scipy.stats.ttest_ind(a, b, equal_var=False)``) at ``ALPHA`` = 0.05:

- **held**: mean(A) > mean(B) and p < 0.05;
- **did not hold**: mean(A) < mean(B) and p < 0.05;
- **undecided at this budget**: otherwise, and whenever a side has fewer than 2 seeds (no test is
  possible) or a side did not learn (its mean AP under ``LEARNED_AP``: such a row decides nothing).

Rows are found by their ``role`` and by the ``model`` settings of their config (``template``), never
by name. Everything here works on the summary entries of :mod:`mrae.apps.study.summary` (or the
``rows`` of ``results.json``), so the verdicts can be recomputed from the JSON alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

ALPHA = 0.05
LEARNED_AP = 0.1  # AP points (x100): a row whose mean AP is below this did not learn
HELD, NOT_HELD, UNDECIDED = "held", "did not hold", "undecided at this budget"
MRAE_ROLES = ("mrae", "mrae_spatial", "mixed", "mrae_long")  # rows with a template

Entry = dict[str, Any]
BASELINE, T2 = "row of role baseline", "row of role mrae with template 2"


# ------------------------------------------------------------------------------ the numbers


def ap_values(entry: Entry) -> list[float]:
    """The final AP (x100) of each seed that finished."""
    return [100 * r["AP"] for r in entry["runs"] if r.get("AP") is not None]


def mean_ap(entry: Entry) -> float:
    values = ap_values(entry)
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


def half_schedule_values(entry: Entry) -> list[float]:
    """AP (x100) at half the schedule, one value per seed with an evaluation curve."""
    values = (ap_at_fraction(curve, 0.5) for curve in entry["curves"])
    return [v for v in values if v is not None]


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n if n else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Whether A beats B: the verdict, means, sample stds, difference and Welch's p-value."""
    (mean_a, std_a), (mean_b, std_b) = _mean_std(a), _mean_std(b)
    result = {"n_a": len(a), "n_b": len(b), "mean_a": mean_a, "std_a": std_a, "mean_b": mean_b,
              "std_b": std_b, "diff": mean_a - mean_b, "p": None, "verdict": UNDECIDED, "note": None}
    if len(a) < 2 or len(b) < 2:
        result["note"] = "no test possible: a t-test needs at least 2 seeds on each side"
        return result
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical values: a precision warning
        p = float(ttest_ind(a, b, equal_var=False).pvalue)
    if math.isnan(p):
        result["note"] = "no test possible: every seed gave the same AP on both sides"
        return result
    result["p"] = p
    if p < ALPHA:
        result["verdict"] = HELD if mean_a > mean_b else NOT_HELD if mean_a < mean_b else UNDECIDED
    return result


def compare(a: Entry, b: Entry, label: str = "AP", values: Callable[[Entry], list[float]] = ap_values,
            exempt: tuple[str, ...] = (), decisive: bool = True) -> dict[str, Any]:
    """Row `a` beats row `b` on `values` (per seed)? Rows named in `exempt` may have not learned."""
    result = {"a": a["name"], "b": b["name"], "label": label, "decisive": decisive,
              **welch(values(a), values(b))}
    idle = [e["name"] for e in (a, b) if e["name"] not in exempt and mean_ap(e) < LEARNED_AP]
    if idle:
        result["verdict"] = UNDECIDED
        result["note"] = (f"{' and '.join(idle)} did not learn (mean AP under {LEARNED_AP}), "
                          "so the comparison decides nothing")
    return result


def combine(comparisons: list[dict[str, Any]]) -> str | None:
    """One verdict from the decisive comparisons: held if all held, did not hold if any did not."""
    verdicts = [c["verdict"] for c in comparisons if c["decisive"]]
    if not verdicts:
        return None
    if all(v == HELD for v in verdicts):
        return HELD
    return NOT_HELD if NOT_HELD in verdicts else UNDECIDED


# ------------------------------------------------------------------------------ the claims


def find(rows: list[Entry], role: str, **model: Any) -> list[Entry]:
    """The rows of `role` (with these model settings) that have a finished, non-diverged run."""
    return [e for e in rows if e.get("role") == role and e["seeds"]
            and all(e.get("model", {}).get(k) == v for k, v in model.items())]


def _first(rows: list[Entry], role: str, **model: Any) -> Entry | None:
    found = find(rows, role, **model)
    return found[0] if found else None


def _claim(key: str, title: str, paper: str, comparisons: list, missing: str | None = None,
           extra: str | None = None) -> dict[str, Any]:
    return {"id": key, "title": title, "paper": paper, "verdict": None if missing else combine(comparisons),
            "comparisons": comparisons, "missing": missing, "extra": extra}


def judge(rows: list[Entry]) -> list[dict[str, Any]]:
    """Every claim of the paper, judged on the rows (see the module's docstring for the rule)."""
    baselines = find(rows, "baseline")
    best = max(baselines, key=mean_ap) if baselines else None
    t2 = _first(rows, "mrae", template=2)
    claims = []

    title, paper = "MRAE beats the best single-level baseline", "5.0 vs 2.6 AP, 1.9x"
    if best and t2:
        ratio = (f"{mean_ap(t2) / mean_ap(best):.2f}x" if mean_ap(best) > 0
                 else "undefined (baseline at 0)")
        claims.append(_claim("beats_baseline", title, paper, [compare(t2, best)],
                             extra=f"ratio of the means {ratio}"))
    else:
        claims.append(_claim("beats_baseline", title, paper, [], missing=_missing({BASELINE: best, T2: t2})))

    title, paper = "MRAE converges faster than the best baseline", "MRAE grows AP rapidly"
    if best and t2 and not (half_schedule_values(best) and half_schedule_values(t2)):
        claims.append(_claim("converges_faster", title, paper, [],
                             missing="evaluation partway through the schedule (its runs were "
                             "evaluated only at the end: train.eval_every covers the whole schedule)"))
    elif best and t2:
        comparison = compare(t2, best, "AP at half the schedule", half_schedule_values)
        claims.append(_claim("converges_faster", title, paper, [comparison]))
    else:
        claims.append(_claim("converges_faster", title, paper, [], missing=_missing({BASELINE: best, T2: t2})))

    title, paper = "Template 2 is the best template", "3.6 / 5.0 / 3.6 AP for templates 1 / 2 / 3"
    others = [e for t in (1, 3) if (e := _first(rows, "mrae", template=t))]
    if t2 and others:
        claims.append(_claim("template_2_best", title, paper, [compare(t2, e) for e in others]))
    else:
        claims.append(_claim("template_2_best", title, paper, [],
                             missing="rows of role mrae with template 2 and with template 1 or 3"))

    title, paper = "Soft attention barely learns: well below the baselines", "0.04 AP vs 2.3 to 2.6"
    soft = _first(rows, "soft")
    if soft and best:
        mean_single = sum(mean_ap(e) for e in baselines) / len(baselines)
        claims.append(_claim("soft_barely_learns", title, paper,
                             [compare(best, soft, exempt=(soft["name"],))],
                             extra=f"mean single level {mean_single:.2f} AP"))
    else:
        claims.append(_claim("soft_barely_learns", title, paper, [], missing=_missing({BASELINE: best, "row of role soft": soft})))

    claims.append(_mixed_claim(rows))
    for role, title in (("fpn", "MRAE beats FPN"),
                        ("fpn_all_anchors", "MRAE beats FPN with every anchor size on every map")):
        fpn = _first(rows, role)
        paper = "not in its tables; Fig. 1(d) shows FPN as the alternative"
        if fpn and t2:
            speed = f"inference {_ms(t2):.0f} vs {_ms(fpn):.0f} ms/image" if _ms(t2) and _ms(fpn) else None
            claims.append(_claim(f"vs_{role}", title, paper, [compare(t2, fpn)], extra=speed))
        else:
            claims.append(_claim(f"vs_{role}", title, paper, [], missing=_missing({f"row of role {role}": fpn, T2: t2})))
    return claims


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
        comparisons.append(compare(long, mixed, "AP, equal total steps"))
    if plain:
        comparisons.append(compare(plain, mixed, "AP as the paper compared them, the mixed row "
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


# ------------------------------------------------------------------------------ in words


def _side(name: str, mean: float, std: float, n: int) -> str:
    if n == 0:
        return f"{name} (no value)"
    spread = f" ± {std:.2f}" if n > 1 else ""
    return f"{name} {mean:.2f}{spread} ({n} seed{'s' if n != 1 else ''})"


def describe_comparison(c: dict[str, Any], verdict: str | None = None) -> str:
    """``LABEL (VERDICT): A mean ± std (n seeds) vs B ..., difference, Welch p (note)``."""
    p = "–" if c["p"] is None else ("< 0.001" if c["p"] < 0.001 else f"= {c['p']:.3f}")
    label = f"{c['label']} ({verdict})" if verdict else c["label"]
    text = (f"{label}: {_side(c['a'], c['mean_a'], c['std_a'], c['n_a'])} vs "
            f"{_side(c['b'], c['mean_b'], c['std_b'], c['n_b'])}")
    if c["n_a"] and c["n_b"]:
        text += f", difference {c['diff']:+.2f}"
    text += f", Welch p {p}" if c["p"] is not None else ""
    return text + (f" ({c['note']})" if c["note"] else "")


def describe(claim: dict[str, Any]) -> str:
    """One sentence: the claim, the paper's numbers, the verdict and the measured numbers."""
    head = f"**{claim['title']}** (paper: {claim['paper']}): "
    if claim["verdict"] is None:
        return head + f"not judged: the study has no finished {claim['missing']}."
    several = len(claim["comparisons"]) > 1
    parts = [describe_comparison(c, c["verdict"] if several else None) for c in claim["comparisons"]]
    extra = f"; {claim['extra']}" if claim["extra"] else ""
    return head + f"**{claim['verdict']}**. " + "; ".join(parts) + extra + "."


def observations(rows: list[Entry]) -> list[str]:
    """What is not a claim but read beside them: where the attention rows look, and divergences."""
    lines = []
    looks = []
    for entry in rows:
        if entry.get("role") in MRAE_ROLES and entry.get("attention"):
            weights = entry["attention"]
            top = max(range(3), key=weights.__getitem__) + 1
            looks.append((entry["name"], entry["model"]["template"], top,
                          "/".join(f"{w:.2f}" for w in weights)))
    if looks:
        on_template = sum(template == top for _, template, top, _ in looks)
        lines.append(
            f"**Where MRAE looks**: in {on_template} of {len(looks)} MRAE rows the template's own "
            "level gets the largest mean weight (its cosine with itself is 1, so at cosines near 0 "
            "it gets e/(e+2) = 0.58); mean C1/C2/C3 weights: "
            + "; ".join(f"{name} {shown}" for name, _, _, shown in looks) + "."
        )
    for entry in rows:
        if entry.get("role") == "soft" and entry.get("attention"):
            shown = "/".join(f"{w:.2f}" for w in entry["attention"])
            lines.append(f"**Where soft attention looks**: mean C1/C2/C3 weights of {entry['name']} {shown}.")
    for entry in rows:
        for seed, message in (entry.get("diverged") or {}).items():
            lines.append(f"**{entry['name']}, seed {seed} diverged** and is reported as such: {message}")
    return lines


def discuss(rows: list[Entry]) -> list[str]:
    """The page's "what held" list: one sentence per claim, then the observations."""
    return [describe(claim) for claim in judge(rows)] + observations(rows)
