"""The claims the study judges: rows of a table (:data:`PAPER_CLAIMS`, :data:`ORDER_CLAIMS`,
:data:`NWD_CLAIMS`), each judged by one function, :func:`judge_claim`.

A claim "A beats B (by the paper's ratio P)" names its two sides as row queries (:class:`Query`:
the rows of a role, with some model settings, the first, the best by mean AP or each of them) and
is judged with :mod:`mrae.apps.study.effect`: a 95% interval for AP(A) / AP(B) on log AP, paired by
seed where both rows ran the same seeds (a seed's batches are the same in every row), and one of
five verdicts: **held (at the paper's size)**, **held but smaller than the paper's**, **did not hold
(the other direction)**, **not at the paper's size** (the interval includes 1 but excludes P) and
**undecided** (it includes both). A claim the paper makes without a number is held, did not hold or
undecided by whether the interval excludes 1. A side with fewer than 2 seeds gives no interval
(undecided), and a row that did not learn (mean AP under ``LEARNED_AP``) decides nothing. Welch's
t-test p-value is kept beside each comparison for readers who think in p-values; it decides nothing.
A claim with several comparisons (each fusion row, each other template) takes the weakest joint
verdict (:func:`combine`).

Rows are found by their ``role`` and by the ``model`` settings of their config (``template``,
``detector``, ``box_similarity``; :mod:`mrae.apps.study.facts`), never by name. The paper's claims
are judged on the paper's host with IoU assignment. The same orderings (:data:`ORDER_CLAIMS`: MRAE
template 2 against the best single level and against sum) are judged under each other
:class:`Condition`: each other host's rows alone (the host study, issue 18) and the rows with NWD
assignment (issue 33), which also has its own claims (:data:`NWD_CLAIMS`: each NWD row against
the IoU row of the same extractor). Everything here works on the summary entries of
:mod:`mrae.apps.study.summary` (or the ``rows`` of ``results.json``), so the verdicts can be
recomputed from the JSON alone.

Adding a claim is one row in a table: docs/architecture.md shows it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mrae.apps.study.effect import (
    HELD,
    NOT_HELD,
    NOT_PAPER_SIZE,
    SMALLER,
    UNDECIDED,
    ratio_verdict,
)
from mrae.apps.study.facts import (
    OTHER_HOSTS,
    PAPER_HOST,
    SIMILARITY_TITLES,
    host_title,
    setting_of,
)

LEARNED_AP = 0.1  # AP points (x100): a row whose mean AP is below this did not learn
# The paper's ratios (Tables 2 and 3), favoured row over the other.
PAPER_T2_VS_BASELINE = 5.0 / 2.6
PAPER_T2_VS_T1, PAPER_T2_VS_T3 = 5.0 / 3.6, 5.0 / 3.6
PAPER_BASELINE_VS_SOFT = 2.6 / 0.04
PAPER_T2_VS_MIXED = 5.0 / 3.5
# NWD's paper (Wang et al. 2021, the authors' mmdetection fork): Faster R-CNN on AI-TOD-v2 with
# NWD in place of IoU in label assignment, 21.9 against 12.9 AP.
PAPER_NWD_VS_IOU = 21.9 / 12.9
HALF = "AP at half the schedule"

Entry = dict[str, Any]


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


# ------------------------------------------------------------------------------ the table's parts


@dataclass(frozen=True)
class Query:
    """The rows of one side of a claim: those of ``role`` with a finished run whose model settings
    match ``settings`` (a tuple value: any of its values; ``detector`` defaults to the paper's
    host and ``box_similarity`` to ``iou``) and, for each key of ``same``, the row on the claim's
    other side; ``pick``: ``first`` (in the study file's order), ``best`` (the highest mean AP) or
    ``each``. ``label``: what the comparison is called on the page, where not the claim kind's."""

    role: str
    settings: tuple[tuple[str, Any], ...] = ()
    pick: str = "first"
    same: tuple[str, ...] = ()
    label: str | None = None

    def candidates(self, rows: list[Entry], other: Entry | None = None) -> list[Entry]:
        """Every row the query matches, before ``pick``; `other`: the row on the other side."""
        wanted = {"detector": PAPER_HOST, "box_similarity": "iou", **dict(self.settings),
                  **{key: setting_of(other, key) for key in self.same if other is not None}}
        return [e for e in rows if e.get("role") == self.role and e["seeds"]
                and all(_matches(setting_of(e, key), value) for key, value in wanted.items())]

    def find(self, rows: list[Entry], other: Entry | None = None) -> list[Entry]:
        found = self.candidates(rows, other)
        if self.pick == "best":
            return [max(found, key=mean_ap)] if found else []
        return found if self.pick == "each" else found[:1]

    def describe(self, other: Entry | None = None, roles: tuple[str, ...] = ()) -> str:
        """``row of role mrae with template 2 in RetinaNet``: what the page says is missing;
        `roles`: alternatives to this query's role (``row of role mrae_long or mrae ...``)."""
        settings = {**dict(self.settings),
                    **{key: setting_of(other, key) for key in self.same if other is not None}}
        # "rows" for each row of a role; "row ... with template 1 or 3" already says "any of"
        plural = self.pick == "each" and not any(isinstance(v, tuple) for v in settings.values())
        text = f"{'rows' if plural else 'row'} of role {' or '.join((self.role, *roles))}"
        if "extractor" in settings:
            text += f" ({_words(settings['extractor'])})"
        if "level" in settings:
            text += f" at level C{_words(settings['level'], 'C')}"
        if "template" in settings:
            text += f" with template {_words(settings['template'])}"
        if "detector" in settings and settings["detector"] != PAPER_HOST:
            text += f" in {host_title(settings['detector'])}"
        if "box_similarity" in settings:
            text += f" under {SIMILARITY_TITLES.get(settings['box_similarity'], settings['box_similarity'])}"
        return text


def _matches(value: Any, wanted: Any) -> bool:
    return value in wanted if isinstance(wanted, tuple) else value == wanted


def _words(value: Any, prefix: str = "") -> str:
    """``1 or 3`` (``1 or C3`` with `prefix` C) for a tuple of values, the value otherwise."""
    return f" or {prefix}".join(map(str, value)) if isinstance(value, tuple) else str(value)


def rows_of(role: str, pick: str = "first", same: tuple[str, ...] = (), label: str | None = None,
            **settings: Any) -> Query:
    """``Query(role, settings, pick, same, label)`` with the settings as keywords."""
    return Query(role, tuple(settings.items()), pick, same, label)


@dataclass(frozen=True)
class Claim:
    """One row of a claims table: ``a`` (alternatives: the first that finds rows decides, the
    later ones that find rows are shown beside it, deciding nothing) beats ``b`` (at the paper's
    ``ratio``, or in direction where it is None), on the final AP (``kind`` ``ap``) or the AP at
    half the schedule (``half``); ``b_may_idle``: the claim is that B barely learns, so B at zero
    AP still decides; ``extra``: the name of a line of :data:`EXTRAS` shown after the numbers;
    ``host``: the host of a host study's claim (kept in the judged claim); ``reference``: the
    claim this one repeats under another condition (its ratio is shown beside, by ``extra``
    ``beside``), with the condition's words for it in ``reference_name``."""

    key: str
    title: str
    paper: str
    ratio: float | None
    a: tuple[Query, ...]
    b: Query
    kind: str = "ap"
    b_may_idle: bool = False
    extra: str | None = None
    host: str | None = None
    similarity: str | None = None
    reference: Claim | None = None
    reference_name: str | None = None


@dataclass(frozen=True)
class Condition:
    """A setting under which :data:`ORDER_CLAIMS` are judged again on the rows that have it
    (``setting``: a model setting and its value), named ``name`` on the page; ``reference``: how
    the paper's condition is named beside it; ``paper_note``: added to the paper's figure."""

    key: str
    name: str
    setting: tuple[str, Any]
    reference: str
    paper_note: str


def under(claim: Claim, condition: Condition) -> Claim:
    """`claim` judged on the rows of `condition` alone, its ratio shown beside the paper's
    condition's."""
    key, value = condition.setting

    def moved(query: Query) -> Query:
        return replace(query, settings=(*query.settings, (key, value)))

    return replace(claim, key=f"{condition.key}_{claim.key}", title=f"{condition.name}: {claim.title}",
                   paper=claim.paper + (condition.paper_note if claim.ratio else ""),
                   a=tuple(moved(q) for q in claim.a), b=moved(claim.b),
                   host=value if key == "detector" else None,
                   similarity=value if key == "box_similarity" else None,
                   reference=claim, reference_name=condition.reference)


# ------------------------------------------------------------------------------ the tables

T2 = rows_of("mrae", template=2)
BEST_SINGLE = rows_of("baseline", pick="best")

# The paper's claims, on the paper's host (Faster R-CNN) with IoU assignment.
PAPER_CLAIMS: tuple[Claim, ...] = (
    Claim("beats_baseline", "MRAE beats the best single-level baseline", "5.0 vs 2.6 AP, 1.9x",
          PAPER_T2_VS_BASELINE, (T2,), BEST_SINGLE, extra="ratio"),
    Claim("converges_faster", "MRAE converges faster than the best baseline",
          "MRAE grows AP rapidly, with fewer steps; no number for it", None, (T2,), BEST_SINGLE,
          kind="half"),
    Claim("template_2_best", "Template 2 is the best template",
          "3.6 / 5.0 / 3.6 AP for templates 1 / 2 / 3", PAPER_T2_VS_T1, (T2,),
          rows_of("mrae", pick="each", template=(1, 3))),
    Claim("soft_barely_learns", "Soft attention barely learns: well below the baselines",
          "0.04 AP vs 2.3 to 2.6", PAPER_BASELINE_VS_SOFT, (BEST_SINGLE,), rows_of("soft"),
          b_may_idle=True, extra="mean_single"),
    Claim("mixed_hurts", "Switching templates mid-training hurts",
          "3.5 AP mixed, 1311k steps in all, vs 5.0 template 2, 1100k steps", PAPER_T2_VS_MIXED,
          (rows_of("mrae_long", same=("template",), label="AP, equal total steps"),
           rows_of("mrae", same=("template",),
                   label="AP as the paper compared them, the mixed row training longer")),
          rows_of("mixed")),
    Claim("vs_fusions", "MRAE beats the simple fusions (concatenation, element-wise sum)",
          "not in its tables; Fig. 2 shows them as what MRAE differs from", None, (T2,),
          rows_of("fusion", pick="each")),
    Claim("vs_fpn", "MRAE beats FPN", "not in its tables; Fig. 1(d) shows FPN as the alternative",
          None, (T2,), rows_of("fpn"), extra="speed"),
    Claim("vs_fpn_all_anchors", "MRAE beats FPN with every anchor size on every map",
          "not in its tables; Fig. 1(d) shows FPN as the alternative", None, (T2,),
          rows_of("fpn_all_anchors"), extra="speed"),
)

# MRAE's order against the best single level and sum: judged again under each other condition.
ORDER_CLAIMS: tuple[Claim, ...] = (
    Claim("beats_baseline", "MRAE beats the best single-level baseline", "5.0 vs 2.6 AP, 1.9x",
          PAPER_T2_VS_BASELINE, (T2,), BEST_SINGLE, extra="beside"),
    Claim("vs_sum", "MRAE beats sum", "not in its tables; Fig. 2 shows the fusions as the alternative",
          None, (T2,), rows_of("fusion", extractor="sum"), extra="beside"),
)

NWD = Condition("nwd", "NWD", ("box_similarity", "nwd"), "IoU", ", with IoU assignment")


def host_condition(host: str) -> Condition:
    return Condition(host, host_title(host), ("detector", host), host_title(PAPER_HOST),
                     f", in {host_title(PAPER_HOST)}")


def _nwd_claim(key: str, role: str, what: str, same: tuple[str, ...]) -> Claim:
    """NWD assignment beats IoU for the rows of `role`: each NWD row against the IoU row of the
    same extractor (the settings `same`), paired by seed."""
    return Claim(f"nwd_beats_iou_{key}", f"NWD assignment beats IoU with {what}",
                 "Wang et al. 2021: Faster R-CNN on AI-TOD-v2 21.9 vs 12.9 AP, 1.7x",
                 PAPER_NWD_VS_IOU, (rows_of(role, pick="each", box_similarity="nwd"),),
                 rows_of(role, same=same, box_similarity="iou"), similarity="nwd")


# Issue 33: does NWD label assignment beat IoU, extractor by extractor?
NWD_CLAIMS: tuple[Claim, ...] = (
    _nwd_claim("single", "baseline", "a single level", ("level",)),
    _nwd_claim("mrae", "mrae", "MRAE", ("template",)),
    _nwd_claim("fusion", "fusion", "a fusion", ("extractor",)),
)


# ------------------------------------------------------------------------------ judging a claim

KINDS: dict[str, tuple[str, Callable[[Entry], dict[int, float]]]] = {
    "ap": ("AP", ap_values),
    "half": (HALF, half_schedule_values),
}
NO_HALF = ("evaluation partway through the schedule (its runs were evaluated only at the end: "
           "train.eval_every covers the whole schedule)")

Pair = tuple[Query, Entry, Entry]  # the a-side query that found the pair, row A, row B


def _pairs(claim: Claim, rows: list[Entry]) -> tuple[list[Pair], str | None]:
    """The (query, A, B) pairs the claim compares, and what is missing where there are none."""
    if claim.b.same:  # B follows each A row (an NWD row's IoU twin)
        found_a = [(q, a) for q in claim.a for a in q.find(rows)]
        if not found_a:
            return [], _alternatives(claim.a)
        pairs = [(q, a, b) for q, a in found_a for b in claim.b.find(rows, a)]
        return pairs, None if pairs else claim.b.describe(found_a[0][1])
    if any(q.same for q in claim.a):  # A follows the B row (the mixed row's template)
        found_b = claim.b.find(rows)
        if not found_b:
            return [], claim.b.describe()
        pairs = [(q, a, b) for b in found_b for q in claim.a for a in q.find(rows, b)]
        return pairs, None if pairs else _alternatives(claim.a, found_b[0])
    found_a = [(q, a) for q in claim.a for a in q.find(rows)]
    found_b = claim.b.find(rows)
    if not found_a or not found_b:
        lacking = ([] if found_b else [claim.b.describe()]) + ([] if found_a else [_alternatives(claim.a)])
        return [], " and ".join(lacking)
    return [(q, a, b) for q, a in found_a for b in found_b], None


def _alternatives(queries: tuple[Query, ...], other: Entry | None = None) -> str:
    return queries[0].describe(other, tuple(q.role for q in queries[1:]))


def judge_claim(claim: Claim, rows: list[Entry]) -> dict[str, Any]:
    """One claim of a table judged on the summary entries `rows`: ``id``, ``title``, ``paper``,
    ``verdict`` (None where not judged), ``comparisons``, ``missing`` (the rows, or the
    evaluations, it lacks), ``extra`` and, for a host's or NWD's claim, ``host`` or
    ``similarity``."""
    label, values = KINDS[claim.kind]
    pairs, missing = _pairs(claim, rows)
    if not missing and claim.kind == "half" and not all(values(a) and values(b) for _, a, b in pairs):
        missing = NO_HALF
    comparisons = []
    if not missing:
        deciding = pairs[0][0]
        comparisons = [compare(a, b, claim.ratio, query.label or label, values,
                               exempt=(b["name"],) if claim.b_may_idle else (),
                               decisive=query is deciding)
                       for query, a, b in pairs]
    judged = {"id": claim.key, "title": claim.title, "paper": claim.paper,
              "verdict": None if missing else combine(comparisons), "comparisons": comparisons,
              "missing": missing or None,
              "extra": None if missing or claim.extra is None else EXTRAS[claim.extra](claim, pairs, rows)}
    if claim.host is not None:
        judged["host"] = claim.host
    if claim.similarity is not None:
        judged["similarity"] = claim.similarity
    return judged


# ------------------------------------------------------------------------------ the extra lines


def _ratio(a: Entry, b: Entry, at_zero: str) -> str:
    return f"{mean_ap(a) / mean_ap(b):.2f}x" if mean_ap(b) > 0 else at_zero


def _ratio_line(claim: Claim, pairs: list[Pair], rows: list[Entry]) -> str:
    _, a, b = pairs[0]
    return f"ratio of the means {_ratio(a, b, 'undefined (baseline at 0)')}"


def _mean_single(claim: Claim, pairs: list[Pair], rows: list[Entry]) -> str:
    singles = claim.a[0].candidates(rows)
    return f"mean single level {sum(mean_ap(e) for e in singles) / len(singles):.2f} AP"


def _ms(entry: Entry) -> float | None:
    """Inference ms/image: the quiet measurement after training where there is one."""
    return entry.get("ms_per_image") or entry.get("mean", {}).get("ms_per_image")


def _speed(claim: Claim, pairs: list[Pair], rows: list[Entry]) -> str | None:
    _, a, b = pairs[0]
    return f"inference {_ms(a):.0f} vs {_ms(b):.0f} ms/image" if _ms(a) and _ms(b) else None


def _beside(claim: Claim, pairs: list[Pair], rows: list[Entry]) -> str:
    """``ratio of the means 1.23x (Faster R-CNN's MRAE template 2 vs single C2: 1.10x)``: A/B,
    and the same comparison under the paper's condition where both of its rows ran."""
    _, a, b = pairs[0]
    text = f"ratio of the means {_ratio(a, b, 'undefined (at 0 AP)')}"
    if claim.reference is not None:
        reference, _ = _pairs(claim.reference, rows)
        if reference:
            _, ra, rb = reference[0]
            text += (f" ({claim.reference_name}'s {ra['name']} vs {rb['name']}: "
                     f"{_ratio(ra, rb, 'undefined (at 0 AP)')})")
    return text


EXTRAS: dict[str, Callable[[Claim, list[Pair], list[Entry]], str | None]] = {
    "ratio": _ratio_line, "mean_single": _mean_single, "speed": _speed, "beside": _beside,
}


# ------------------------------------------------------------------------------ the study's claims


def paper_claims(rows: list[Entry]) -> list[dict[str, Any]]:
    """The paper's claims (:data:`PAPER_CLAIMS`), judged on the paper's host's IoU rows."""
    return [judge_claim(claim, rows) for claim in PAPER_CLAIMS]


def host_claims(rows: list[Entry], host: str) -> list[dict[str, Any]]:
    """Does the ordering hold in `host`? :data:`ORDER_CLAIMS` on that host's rows alone: MRAE
    template 2 beats the best single level (at the paper's ratio) and beats sum (direction only);
    each claim's ``extra`` gives the ratio of the means beside the same rows' in Faster R-CNN."""
    return [judge_claim(under(claim, host_condition(host)), rows) for claim in ORDER_CLAIMS]


def nwd_claims(rows: list[Entry]) -> list[dict[str, Any]]:
    """NWD against IoU (:data:`NWD_CLAIMS`, each NWD row against the IoU row of its extractor),
    then MRAE's order under NWD (:data:`ORDER_CLAIMS` on the NWD rows, beside IoU's)."""
    return ([judge_claim(claim, rows) for claim in NWD_CLAIMS]
            + [judge_claim(under(claim, NWD), rows) for claim in ORDER_CLAIMS])


def similarities(rows: list[Entry], pending: list[dict] | None = None) -> list[str]:
    """The box similarities of the study's rows, finished or pending (``iou`` where not kept)."""
    return list(dict.fromkeys(setting_of(e, "box_similarity") for e in [*rows, *(pending or [])]))


def judge(rows: list[Entry], hosts: list[str] | tuple[str, ...] = OTHER_HOSTS,
          pending: list[dict] | None = None) -> list[dict[str, Any]]:
    """Every claim of the paper, judged on the Faster R-CNN rows (see the module's docstring for
    the rule), then the host study's claims for each of `hosts` other than Faster R-CNN, then,
    where a row of the study assigns by NWD, the NWD claims; each with ``lacking`` where
    `pending` is given (:func:`with_lacking`)."""
    claims = with_lacking(paper_claims, rows, pending) + [
        c for host in hosts if host != PAPER_HOST
        for c in with_lacking(lambda r, host=host: host_claims(r, host), rows, pending)]
    if "nwd" in similarities(rows, pending):
        claims += with_lacking(nwd_claims, rows, pending)
    return claims


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
