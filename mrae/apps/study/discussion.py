"""The study's verdicts in words: one sentence per claim (:func:`describe`), the page's "what
held" lists (:func:`discuss`, :func:`discuss_hosts`) and what is read beside the claims
(:func:`observations`, :func:`stalled_lines`), from the claims that :mod:`mrae.apps.study.claims`
judges."""

from __future__ import annotations

import functools
from typing import Any

from mrae.apps.study.claims import (
    Entry,
    host_claims,
    paper_claims,
    pending_count,
    with_lacking,
)
from mrae.apps.study.effect import describe_interval
from mrae.apps.study.facts import MRAE_ROLES, OTHER_HOSTS, PAPER_HOST, host_of


def partial_note(pending: list[dict] | None) -> str | None:
    """``**Partial: 3 runs of the study file have not finished (sum (seeds 1, 2); ...); ...**``
    for results with pending runs (``results["pending"]``); None for a finished study."""
    runs = pending_count(pending)
    if not runs:
        return None
    waiting = "; ".join(f"{p['name']} (seed{'s' if len(p['seeds']) > 1 else ''} "
                        f"{', '.join(map(str, p['seeds']))})" for p in pending)
    return (f"**Partial: {runs} run{'s' if runs != 1 else ''} of the study file "
            f"{'have' if runs != 1 else 'has'} not finished ({waiting}); the rows and claims are "
            "those of the finished runs, and a claim whose rows have not all finished is not judged "
            "yet.**")


def _side(name: str, mean: float, std: float, n: int) -> str:
    if n == 0:
        return f"{name} (no value)"
    spread = f" ± {std:.2f}" if n > 1 else ""
    return f"{name} {mean:.2f}{spread} ({n} seed{'s' if n != 1 else ''})"


def describe_comparison(c: dict[str, Any], verdict: str | None = None) -> str:
    """``LABEL (VERDICT): A mean ± std (n seeds) vs B ..., difference, ratio and its 95% CI
    (paired or Welch), the paper's ratio, Welch p (note)``."""
    label = f"{c['label']} ({verdict})" if verdict else c["label"]
    text = (f"{label}: {_side(c['a'], c['mean_a'], c['std_a'], c['n_a'])} vs "
            f"{_side(c['b'], c['mean_b'], c['std_b'], c['n_b'])}")
    if c["n_a"] and c["n_b"]:
        text += f", difference {c['diff']:+.2f}"
    if c.get("interval") is not None:
        text += f", {describe_interval(c)}"
    if c["p"] is not None:
        p = "< 0.001" if c["p"] < 0.001 else f"= {c['p']:.3f}"
        text += f", Welch p {p}"
    return text + (f" ({c['note']})" if c["note"] else "")


def describe(claim: dict[str, Any], pending: int | None = None) -> str:
    """One sentence: the claim, the paper's numbers, the verdict and the measured numbers. For a
    claim not judged, `pending` (the study's runs without a result, :func:`pending_count`; None
    where unknown, in results written before they were counted) and the claim's ``lacking`` (the
    rows the study file itself does not have, :func:`with_lacking`) tell a claim whose rows the
    study does not run from one whose rows have not finished."""
    head = f"**{claim['title']}** (paper: {claim['paper']}): "
    if claim["verdict"] is None:
        return head + "not judged: " + _why_not_judged(claim["missing"], claim.get("lacking"), pending) + "."
    several = len(claim["comparisons"]) > 1
    parts = [describe_comparison(c, c["verdict"] if several else None) for c in claim["comparisons"]]
    extra = f"; {claim['extra']}" if claim["extra"] else ""
    return head + f"**{claim['verdict']}**. " + "; ".join(parts) + extra + "."


def _why_not_judged(missing: str, lacking: str | None, pending: int | None) -> str:
    if missing.startswith("evaluation"):  # the rows ran; how they were evaluated decides nothing
        return f"the study has no {missing}"
    if pending is None:
        return f"the study has no finished {missing}"
    if lacking:
        return f"the study file has no {lacking}"
    return f"its rows have not all finished yet ({pending} run{'s' if pending != 1 else ''} of the study pending)"


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
    return lines + stalled_lines([e for e in rows if host_of(e) == PAPER_HOST])


def stalled_lines(rows: list[Entry]) -> list[str]:
    """One line for each run of ``rows`` in which a loss part stopped moving (``stalled``)."""
    lines = []
    for entry in rows:
        for seed, parts in (entry.get("stalled") or {}).items():
            held = "; ".join(f"{part} held {v['value']:.3f} from step {v['since']}" for part, v in parts.items())
            lines.append(f"**{entry['name']}, seed {seed}: a loss part stopped moving** ({held}): what it "
                         "trains got no gradient (FCOS's box regression does this when its ReLU'd "
                         "outputs all fall below zero: the boxes collapse to points); the run's AP is "
                         "reported as it is.")
    return lines


def discuss(rows: list[Entry], pending: list[dict] | None = None) -> list[str]:
    """The page's "what held" list: one sentence per claim of the paper, then the observations;
    `pending`: ``results.json``'s runs without a result (None where unknown)."""
    return ([describe(claim, pending_count(pending)) for claim in with_lacking(paper_claims, rows, pending)]
            + observations(rows))


def discuss_hosts(rows: list[Entry], hosts: list[str] | tuple[str, ...] = OTHER_HOSTS,
                  pending: list[dict] | None = None) -> list[str]:
    """The host study's list: one sentence per claim of each host other than Faster R-CNN."""
    return [*(describe(claim, pending_count(pending)) for host in hosts if host != PAPER_HOST
              for claim in with_lacking(functools.partial(host_claims, host=host), rows, pending)),
            *stalled_lines([e for e in rows if host_of(e) in hosts and host_of(e) != PAPER_HOST])]
