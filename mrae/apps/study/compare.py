"""Two studies' verdicts side by side: which of the paper's claims agree between them.

The real-data study (``configs/hituav/study.yaml``) names the synthetic study's results in its
``compare`` key; its page and the README's comparison block show, for every claim both studies
judged, each study's verdict with the ratio and interval it rests on, and whether they agree.
Everything comes from the two results JSONs (the verdicts in them are the rules of
:mod:`mrae.apps.study.effect`), so no word of the comparison is written by hand.

Agreement, from the two verdicts of one claim:

- **yes**: the same verdict;
- **in direction**: both held, one at the paper's size and one smaller (or without a paper ratio);
- **both below the paper's size**: one held but smaller, the other not at the paper's size (neither
  reaches the paper's ratio, only one excludes no effect);
- **cannot say**: either is undecided or was not judged;
- **no**: anything else (one held where the other went the other way or excluded the paper's size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrae.apps.study.discussion import partial_note
from mrae.apps.study.effect import HELD, HELD_DIRECTION, NOT_PAPER_SIZE, SMALLER, UNDECIDED
from mrae.errors import MraeError
from mrae.inputs import JSON_LIMIT, read_text
from mrae.tables import markdown_table

COMPARE_BEGIN = "<!-- mrae study: comparison begin -->"
COMPARE_END = "<!-- mrae study: comparison end -->"

AGREE, IN_DIRECTION, BOTH_BELOW, CANNOT_SAY, DISAGREE = (
    "yes", "in direction", "both below the paper's size", "cannot say", "no")
_HELD = (HELD, SMALLER, HELD_DIRECTION)


def agreement(a: str | None, b: str | None) -> str:
    """How two verdicts of one claim compare (the module's list)."""
    if a is None or b is None or UNDECIDED in (a, b):
        return CANNOT_SAY
    if a == b:
        return AGREE
    if a in _HELD and b in _HELD:
        return IN_DIRECTION
    if {a, b} == {SMALLER, NOT_PAPER_SIZE}:
        return BOTH_BELOW
    return DISAGREE


def _ratios(claim: dict[str, Any]) -> str:
    """``1.11x (0.65-1.89)`` for each decisive comparison of the claim, joined by ``; ``."""
    cells = []
    several = len(claim["comparisons"]) > 1
    for c in claim["comparisons"]:
        interval = c.get("interval")
        if not c.get("decisive", True) or interval is None:
            continue
        text = f"{interval['ratio']:.2f}x ({interval['low']:.2f}-{interval['high']:.2f})"
        cells.append(f"{c['a']} / {c['b']} {text}" if several else text)
    return "; ".join(cells)


def _cell(claim: dict[str, Any] | None) -> str:
    if claim is None:
        return "not in this study"
    if claim["verdict"] is None:
        return "not judged"  # the study's own page says which run it lacks
    ratios = _ratios(claim)
    return f"**{claim['verdict']}**" + (f": {ratios}" if ratios else "")


def comparison(this: dict[str, Any], other: dict[str, Any], this_name: str,
               other_name: str) -> list[str]:
    """Markdown lines: a table of the claims both results judged (in `other`'s order) with each
    verdict, its ratio and 95% interval, the paper's ratio and the agreement, a line counting the
    agreements, a line per study naming the claims it plans but has not judged yet, and a line
    naming the claims only one of them runs."""
    # a claim whose rows a study file does not have (``lacking``: cut or never planned) is that
    # study's "not run", listed apart from the table
    mine = {c["id"]: c for c in this.get("claims", []) if not c.get("lacking")}
    theirs = {c["id"]: c for c in other.get("claims", []) if not c.get("lacking")}
    shared = [key for key in theirs if key in mine]
    if not shared:
        return [f"No claim is judged in both {other_name} and {this_name}."]
    rows = []
    counts: dict[str, int] = {}
    for key in shared:
        word = agreement(theirs[key]["verdict"], mine[key]["verdict"])
        counts[word] = counts.get(word, 0) + 1
        rows.append([f"{theirs[key]['title']} (paper: {theirs[key]['paper']})",
                     _cell(theirs[key]), _cell(mine[key]), word])
    lines = [*markdown_table(["claim", other_name, this_name, "agree"], rows).split("\n"), ""]
    order = (AGREE, IN_DIRECTION, BOTH_BELOW, DISAGREE, CANNOT_SAY)
    lines.append(f"Of the {len(shared)} claims in both studies: "
                 + ", ".join(f"{counts[w]} {w}" for w in order if w in counts) + ".")
    for name, judged in ((other_name, theirs), (this_name, mine)):
        # (``lacking`` kept and None: the study file has the rows; results without it: unknown)
        waiting = [judged[k]["title"] for k in shared
                   if judged[k]["verdict"] is None and "lacking" in judged[k]]
        if waiting:  # planned there, but its rows have not all finished: said plainly
            lines.append(f"Not judged yet in the {name} study (its rows have not all finished; its "
                         f"page names them): {'; '.join(waiting)}.")
    only = ([f"{theirs[k]['title']} (only {other_name})" for k in theirs if k not in mine]
            + [f"{mine[k]['title']} (only {this_name})" for k in mine if k not in theirs])
    if only:
        lines.append(f"In one study only (the other does not run its rows): {'; '.join(only)}.")
    return lines


def read_results(path: Path) -> dict[str, Any] | None:
    """The results JSON at `path`, or None where it is missing, unreadable or holds no claims."""
    if not path.is_file():
        return None
    try:
        results = json.loads(read_text(path, JSON_LIMIT, what="results JSON"))
    except (MraeError, ValueError, RecursionError):
        return None
    return results if isinstance(results, dict) and isinstance(results.get("claims"), list) else None


def comparison_section(results: dict[str, Any], other: dict[str, Any] | None) -> list[str]:
    """The results page's section comparing this study with the one its ``compare`` names, whose
    results are `other` (:func:`read_results`: None where missing); empty without ``compare``."""
    spec = results.get("compare")
    if not spec:
        return []
    head = [f"## {spec.get('title') or 'Against the ' + spec['other'] + ' study'}", ""]
    if other is None:
        return head + [f"The {spec['other']} study's results (`{spec['results']}`) are not there "
                       "(or not readable) yet; "
                       f"`mrae study {results['study']} --render-only` adds this comparison once "
                       "they are.", ""]
    return head + [
        f"Each of the paper's claims as the {spec['other']} study (`{spec['results']}`, "
        f"{other.get('date', '?')}) and this one judged it: the verdict, the ratio of the two rows' "
        "AP with its 95% interval, and whether the verdicts agree (**in direction**: both held, at "
        "different sizes; **both below the paper's size**: neither reaches the paper's ratio; "
        "**cannot say**: one is undecided).",
        "",
        *comparison(results, other, spec["this"], spec["other"]),
        "",
    ]


def readme_block(results: dict[str, Any], link: str, other: dict[str, Any] | None) -> str | None:
    """The README's comparison block, markers included, from this study's `results` and the
    other's (`other`, :func:`read_results`); None where the other results are missing."""
    spec = results["compare"]
    if other is None:
        return None
    partial = partial_note(results.get("pending"))
    return (f"{COMPARE_BEGIN}\n"
            f"Written by `{results['command']}` ({results['date'][:10]}) from its results and "
            f"`{spec['results']}`; the numbers behind each verdict are in [{link}]({link}).\n\n"
            + (f"{partial}\n\n" if partial else "")
            + "\n".join(comparison(results, other, spec["this"], spec["other"]))
            + f"\n{COMPARE_END}")
