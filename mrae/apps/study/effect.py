"""Effect sizes: a confidence interval for the ratio of two rows' AP, and a verdict at the paper's size.

The paper does not only say "A beats B", it says by how much (Table 2: MRAE template 2 5.0 AP vs
2.6 for the best single level, 1.9x). A claim is judged here on the ratio AP(A) / AP(B) over seeds:

- **the interval**: a 95% t-interval for the ratio of the geometric means, computed on log AP
  (x100) and exponentiated. Where both rows ran the same seeds, a run of seed k sees the same
  batches in the same order with the same flips and crops in every row
  (:class:`mrae.engine.sampler.ResumableSampler` is a function of ``train.seed``), so the rows are
  **paired by seed**: the interval is the paired t-interval of the per-seed log ratios (n - 1
  degrees of freedom). Otherwise it is Welch's interval of the difference of the mean log APs
  (Welch-Satterthwaite degrees of freedom); both from ``scipy.stats`` (``ttest_rel`` and
  ``ttest_ind(..., equal_var=False)``, their ``confidence_interval``). Both are kept, with whether
  pairing narrowed it.
- **the verdict**, from the interval [lo, hi] and the paper's ratio P (> 1: the paper favours A):

  ====================================  ==============================
  verdict                               interval
  ====================================  ==============================
  held (at the paper's size)            lo > 1 and hi >= P
  held but smaller than the paper's     lo > 1 and hi < P
  did not hold (the other direction)    hi < 1
  not at the paper's size               lo <= 1 <= hi and hi < P
  undecided                             lo <= 1 <= hi and hi >= P
  ====================================  ==============================

  A claim whose paper gives no ratio (a claim of direction only) is held, did not hold or
  undecided by whether the interval excludes 1.

Log AP needs AP > 0: a seed at AP 0 (soft attention in the paper: 0.04) is floored at
``AP_FLOOR`` AP points, which makes its side's ratio smaller, never larger, and is noted.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

LEVEL = 0.95
AP_FLOOR = 0.01  # AP points (x100): log AP of a seed at 0 is taken at this value

HELD = "held (at the paper's size)"
SMALLER = "held but smaller than the paper's"
NOT_HELD = "did not hold (the other direction)"
NOT_PAPER_SIZE = "not at the paper's size"
UNDECIDED = "undecided"
HELD_DIRECTION = "held"  # a claim without a paper ratio: held in direction
VERDICTS = (HELD, SMALLER, NOT_HELD, NOT_PAPER_SIZE, UNDECIDED, HELD_DIRECTION)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _logs(values: list[float]) -> tuple[list[float], bool]:
    floored = any(v < AP_FLOOR for v in values)
    return [math.log(max(v, AP_FLOOR)) for v in values], floored


def welch_interval(a: list[float], b: list[float]) -> dict[str, Any] | None:
    """Welch's 95% interval of mean log A - mean log B (``scipy.stats.ttest_ind(...,
    equal_var=False).confidence_interval``), as a ratio; None under 2 values a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    (la, fa), (lb, fb) = _logs(a), _logs(b)
    ratio = math.exp(_mean(la) - _mean(lb))
    if len(set(la)) == 1 and len(set(lb)) == 1:  # no spread: the interval is the ratio itself
        return {"method": "welch", "ratio": ratio, "low": ratio, "high": ratio, "df": None,
                "floored": fa or fb}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly identical values
        test = ttest_ind(la, lb, equal_var=False)
        interval = test.confidence_interval(LEVEL)
    return {"method": "welch", "ratio": ratio, "low": math.exp(interval.low),
            "high": math.exp(interval.high), "df": float(test.df), "floored": fa or fb}


def paired_interval(a: dict[int, float], b: dict[int, float]) -> dict[str, Any] | None:
    """The paired 95% t-interval of log(A_k / B_k) over the seeds k both rows ran
    (``scipy.stats.ttest_rel(...).confidence_interval``), as a ratio; None under 2 shared seeds."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    from scipy.stats import ttest_rel

    (la, fa), (lb, fb) = _logs([a[k] for k in seeds]), _logs([b[k] for k in seeds])
    diffs = [x - y for x, y in zip(la, lb, strict=True)]
    ratio = math.exp(_mean(diffs))
    low = high = ratio  # every seed the same log ratio: no spread
    if len(set(diffs)) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nearly identical differences
            interval = ttest_rel(la, lb).confidence_interval(LEVEL)
        low, high = math.exp(interval.low), math.exp(interval.high)
    return {"method": "paired", "ratio": ratio, "low": low, "high": high, "df": len(diffs) - 1,
            "seeds": seeds, "floored": fa or fb}


def verdict(low: float, high: float, paper: float | None) -> str:
    """One of the five verdicts (the module's table) for the interval [low, high] of A/B against
    the paper's ratio; three (held, did not hold, undecided) where the paper gives none."""
    if paper is None:
        return HELD_DIRECTION if low > 1 else NOT_HELD if high < 1 else UNDECIDED
    if low > 1:
        return HELD if high >= paper else SMALLER
    if high < 1:
        return NOT_HELD
    return UNDECIDED if high >= paper else NOT_PAPER_SIZE


def ratio_verdict(a: dict[int, float], b: dict[int, float], paper: float | None) -> dict[str, Any]:
    """The interval for AP(A)/AP(B) from per-seed APs (x100, keyed by seed) and its verdict.

    Returns ``interval`` (the one the verdict uses: paired where both rows share 2+ seeds, else
    Welch's; None when neither is possible), ``welch``, ``paired``, ``narrowed`` (the paired
    interval is narrower on the log scale than Welch's; None without both), ``paper_ratio`` and
    ``verdict`` (``undecided`` with a ``note`` when no interval is possible).
    """
    welch = welch_interval(list(a.values()), list(b.values()))
    paired = paired_interval(a, b)
    chosen = paired or welch
    result: dict[str, Any] = {"paper_ratio": paper, "welch": welch, "paired": paired,
                              "interval": chosen, "narrowed": None, "note": None}
    if welch and paired:
        result["narrowed"] = _log_width(paired) < _log_width(welch)
    if chosen is None:
        result["verdict"] = UNDECIDED
        result["note"] = "no interval: it needs at least 2 seeds on each side"
        return result
    result["verdict"] = verdict(chosen["low"], chosen["high"], paper)
    if chosen.get("floored"):
        result["note"] = f"a seed at AP under {AP_FLOOR} was taken at {AP_FLOOR} for the log"
    return result


def _log_width(interval: dict[str, Any]) -> float:
    if interval["low"] <= 0:
        return math.inf
    return math.log(interval["high"]) - math.log(interval["low"])


def describe_interval(result: dict[str, Any]) -> str:
    """``ratio 1.23x, 95% CI 0.98-1.54 (paired by seed; Welch 0.91-1.66), paper 1.92x``."""
    chosen = result["interval"]
    paper = f"paper {result['paper_ratio']:.2f}x" if result["paper_ratio"] else "the paper gives no ratio"
    if chosen is None:
        return f"no interval ({result['note']}); {paper}"
    text = f"ratio {chosen['ratio']:.2f}x, 95% CI {chosen['low']:.2f}-{chosen['high']:.2f}"
    if chosen["method"] == "paired":
        welch = result["welch"]
        text += (f" (paired by seed; unpaired Welch {welch['low']:.2f}-{welch['high']:.2f}: pairing "
                 f"{'narrowed' if result['narrowed'] else 'did not narrow'} it)" if welch
                 else " (paired by seed)")
    else:
        text += " (Welch, unpaired)"
    return f"{text}, {paper}"
