"""Ratio intervals and the five verdicts at the paper's effect size, on made-up numbers."""

import math

import pytest
from scipy import stats

from mrae.apps.study.effect import (
    AP_FLOOR,
    HELD,
    HELD_DIRECTION,
    NOT_HELD,
    NOT_PAPER_SIZE,
    SMALLER,
    UNDECIDED,
    describe_interval,
    paired_interval,
    ratio_verdict,
    verdict,
    welch_interval,
)


def _seeds(values: list[float]) -> dict[int, float]:
    return dict(enumerate(values))


@pytest.mark.parametrize(
    ("a", "b", "paper", "expected"),
    [
        # A about 2x B, tight: the interval holds 1.92 and lies above 1.
        ([5.0, 5.1, 4.9], [2.6, 2.5, 2.7], 5.0 / 2.6, HELD),
        # A 1.2x B, tight: above 1, far below 1.92.
        ([3.0, 3.05, 2.95], [2.5, 2.55, 2.45], 5.0 / 2.6, SMALLER),
        # A 0.5x B: the other direction.
        ([2.5, 2.55, 2.45], [5.0, 5.1, 4.9], 5.0 / 2.6, NOT_HELD),
        # About equal, tight: includes 1, excludes 1.92.
        ([3.0, 3.2, 2.9], [3.05, 3.15, 2.95], 5.0 / 2.6, NOT_PAPER_SIZE),
        # Wide: includes 1 and 1.92.
        ([2.0, 6.0, 3.0], [3.0, 2.0, 4.0], 5.0 / 2.6, UNDECIDED),
    ],
)
def test_each_of_the_five_verdicts(a, b, paper, expected):
    result = ratio_verdict(_seeds(a), _seeds(b), paper)
    assert result["verdict"] == expected
    low, high = result["interval"]["low"], result["interval"]["high"]
    assert low < result["interval"]["ratio"] < high


def test_the_verdict_table_at_its_edges():
    assert verdict(1.01, 1.92, 1.92) == HELD  # reaches the paper's ratio
    assert verdict(2.5, 3.0, 1.92) == HELD  # larger than the paper's is held at its size
    assert verdict(1.01, 1.91, 1.92) == SMALLER
    assert verdict(0.5, 0.99, 1.92) == NOT_HELD
    assert verdict(0.9, 1.91, 1.92) == NOT_PAPER_SIZE
    assert verdict(0.9, 1.92, 1.92) == UNDECIDED
    # Without a paper ratio: direction only.
    assert verdict(1.1, 1.2, None) == HELD_DIRECTION
    assert verdict(0.8, 0.9, None) == NOT_HELD
    assert verdict(0.8, 1.2, None) == UNDECIDED


def test_the_paired_interval_is_the_t_interval_of_the_per_seed_log_ratios():
    a, b = {0: 5.0, 1: 6.0, 2: 4.0}, {0: 2.5, 1: 3.2, 2: 1.9}
    result = paired_interval(a, b)
    logs = [math.log(a[k] / b[k]) for k in range(3)]
    low, high = stats.t.interval(0.95, 2, loc=sum(logs) / 3, scale=stats.sem(logs))
    assert result["low"] == pytest.approx(math.exp(low))
    assert result["high"] == pytest.approx(math.exp(high))
    assert result["ratio"] == pytest.approx(math.exp(sum(logs) / 3))
    assert result["df"] == 2 and result["seeds"] == [0, 1, 2]


def test_the_welch_interval_is_welchs_on_log_ap():
    """scipy's interval, checked against Welch's formula (Welch-Satterthwaite degrees of freedom)."""
    a, b = [5.0, 6.0, 4.0], [2.5, 3.2, 1.9, 2.2]
    result = welch_interval(a, b)
    la, lb = [math.log(v) for v in a], [math.log(v) for v in b]
    va, vb = stats.tvar(la) / len(la), stats.tvar(lb) / len(lb)
    df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    diff = sum(la) / len(la) - sum(lb) / len(lb)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert result["df"] == pytest.approx(df)
    assert result["low"] == pytest.approx(math.exp(diff - half))
    assert result["high"] == pytest.approx(math.exp(diff + half))
    assert result["ratio"] == pytest.approx(math.exp(diff))


def test_rows_without_spread_give_the_ratio_itself_as_the_interval():
    welch = welch_interval([4.0, 4.0], [2.0, 2.0])
    assert (welch["low"], welch["ratio"], welch["high"], welch["df"]) == (2.0, 2.0, 2.0, None)
    paired = paired_interval({0: 4.0, 1: 6.0}, {0: 2.0, 1: 3.0})  # every seed 2x
    assert paired["low"] == pytest.approx(2.0) and paired["high"] == pytest.approx(2.0)


def test_pairing_narrows_the_interval_when_seeds_move_together():
    # Seed 1 is good for both rows, seed 2 bad for both: the ratio is steady, the levels are not.
    a, b = _seeds([5.0, 8.0, 3.0]), _seeds([4.0, 6.5, 2.4])
    result = ratio_verdict(a, b, 1.9)
    assert result["interval"]["method"] == "paired" and result["narrowed"] is True
    assert result["verdict"] == SMALLER  # unpaired, the interval would include 1
    assert result["welch"]["low"] < 1 < result["welch"]["high"]
    assert "pairing narrowed it" in describe_interval(result)
    # Seeds that move against each other: pairing does not help.
    crossed = ratio_verdict(_seeds([5.0, 8.0, 3.0]), _seeds([6.0, 3.0, 5.0]), 1.9)
    assert crossed["narrowed"] is False
    assert "did not narrow it" in describe_interval(crossed)


def test_rows_without_shared_seeds_use_welch_and_too_few_seeds_give_no_interval():
    result = ratio_verdict({0: 5.0, 1: 5.2}, {2: 2.5, 3: 2.6}, 1.9)
    assert result["paired"] is None and result["interval"]["method"] == "welch"
    assert "(Welch, unpaired)" in describe_interval(result)
    lonely = ratio_verdict({0: 9.0}, {0: 1.0, 1: 1.1}, 1.9)
    assert lonely["verdict"] == UNDECIDED and lonely["interval"] is None
    assert "at least 2 seeds" in lonely["note"]
    assert describe_interval(lonely).startswith("no interval")


def test_a_seed_at_zero_ap_is_floored_for_the_log_and_said_so():
    result = ratio_verdict(_seeds([2.6, 2.5, 2.7]), _seeds([0.0, 0.04, 0.02]), 65.0)
    assert result["interval"]["floored"] and str(AP_FLOOR) in result["note"]
    assert math.isfinite(result["interval"]["high"])
    assert result["verdict"] in (HELD, SMALLER, UNDECIDED, NOT_PAPER_SIZE)
