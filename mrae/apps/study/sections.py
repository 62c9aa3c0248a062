"""The page's sections around the paper's Tables 2 and 3, from the results JSON: the conclusion
(what the claims say, and what the study cannot; also in the README's block), the host study (the
same orderings in one-stage hosts), the NWD comparison (label assignment by NWD against IoU) and
the pretraining comparison (a row from each trunk start). Each of the last three is empty for a
study without its rows.
"""

from __future__ import annotations

from typing import Any

from mrae.apps.study.budget import run_minutes, seed_spread, trunk_start
from mrae.apps.study.claims import (
    NWD,
    ORDER_CLAIMS,
    judge_claim,
    mean_ap,
    nwd_claims,
    paper_claims,
    pending_count,
    similarities,
    under,
    with_lacking,
)
from mrae.apps.study.compare import agreement
from mrae.apps.study.discussion import describe, discuss_hosts
from mrae.apps.study.facts import PAPER_HOST, host_of, host_title, setting_of
from mrae.apps.study.tables import markdown_table, metric_cell, start_reference, study_hosts
from mrae.tables import markdown_table as write_table


def conclusion(results: dict[str, Any]) -> str:
    """One paragraph: what the study concludes (the claims by verdict) and what it cannot."""
    claims = [c for c in paper_claims(results["rows"]) if c["verdict"] is not None]
    if not claims:
        return ("**In short**: no claim could be judged yet (the rows each claim needs are not "
                "finished).")
    groups: dict[str, list[str]] = {}
    for claim in claims:
        groups.setdefault(claim["verdict"], []).append(claim["title"].rstrip("."))
    said = "; ".join(f"{verdict}: {', '.join(titles)}" for verdict, titles in groups.items())
    b = results["budget"]
    seeds = sorted({len(e["seeds"]) for e in results["rows"] if e["seeds"]})
    data = ("on other data (one dataset here)" if not b["data"].startswith("synthetic")
            else "on real images (synthetic shapes only here)")
    return (
        f"**In short**: of {len(claims)} claims judged, {said}. What it still cannot say: whether "
        f"this holds {data}, for the paper's ImageNet ResNet-101 (here {b['backbone']}, initial "
        f"weights {trunk_start(b, short=True)}), or after the paper's ~1M steps (here "
        f"{b['steps']}); and with {'/'.join(map(str, seeds))} seeds a row the intervals are wide "
        "(a t-interval with 2 degrees of freedom is 4.3 standard errors each side), so an "
        "undecided claim may be decided by more seeds rather than more steps."
    )


def pretraining_section(results: dict[str, Any]) -> list[str]:
    """The pretraining comparison: the rows of role ``start`` against the row of the study whose
    model differs only in its trunk start (:func:`mrae.apps.study.tables.start_reference`), each
    with the interval of the ratio of their AP (paired by seed; the paper gives no ratio, so held /
    did not hold / undecided in direction); empty without such rows."""
    from mrae.apps.study.claims import compare
    from mrae.apps.study.discussion import describe_comparison

    rows = results["rows"]
    starts = [e for e in rows if e.get("role") == "start" and host_of(e) == PAPER_HOST]
    if not starts:
        return []
    lines = ["## What the trunk's pretraining is worth", ""]
    groups: dict[str, tuple[dict | None, list[dict]]] = {}
    for entry in starts:
        reference = start_reference(rows, entry)
        key = reference["name"] if reference else ""
        groups.setdefault(key, (reference, []))[1].append(entry)
    for reference, group in groups.values():
        entries = ([reference] if reference else []) + group
        grid = [[e["name"], trunk_start({"pretrained": e["model"].get("pretrained", "?"),
                                         "backbone": results["budget"]["backbone"]}, short=True),
                 _ap_cell(e)] for e in entries]
        what = f"{reference['name']} at" if reference else "At"
        lines += [f"{what} the budget above from each trunk start; only `model.pretrained` (and "
                  "the pretraining it asks for) differs between these rows.", "",
                  write_table(["row", "trunk start", "AP"], grid), ""]
        if reference is None or not reference["seeds"]:
            lines += ["The row these trunk starts are compared with has no finished run yet: no "
                      "comparison.", ""]
            continue
        for entry in group:
            c = compare(reference, entry, None)
            lines.append(f"- **{reference['name']} against {entry['name']}**: "
                         f"{describe_comparison(c, c['verdict'])}.")
        lines.append("")
    return lines


def _ap_cell(entry: dict | None, with_name: bool = False) -> str:
    """``51.0 ± 1.2 (3 seeds)`` (AP x100 over the finished seeds), ``diverged (2 seeds)`` or
    ``not run yet``; with `with_name`, the row's name first."""
    if entry is None:
        return "not run yet"
    name = f"{entry['name']}: " if with_name else ""
    if not entry["seeds"]:
        return f"{name}diverged ({_seeds(len(entry.get('diverged') or {}))})"
    text = f"{name}{metric_cell(entry, 'AP')} ({_seeds(len(entry['seeds']))})"
    if entry.get("diverged"):
        text += f", {len(entry['diverged'])} diverged"
    return text


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _host_entry(rows: list[dict], host: str, role: str, **model: Any) -> dict | None:
    """The host's IoU row of `role` with these model settings (the best by mean AP among several),
    finished or diverged; None where none has run."""
    found = [e for e in rows if host_of(e) == host and e.get("role") == role
             and setting_of(e, "box_similarity") == "iou"
             and all(e.get("model", {}).get(k) == v for k, v in model.items())]
    return max(found, key=lambda e: (bool(e["seeds"]), mean_ap(e) if e["seeds"] else 0.0),
               default=None)


def host_section(results: dict[str, Any]) -> list[str]:
    """The page's section on the host study (issue 18), for the study's hosts other than Faster
    R-CNN; empty for a study without them. Rows that have not run are said so."""
    hosts = [h for h in study_hosts(results) if h != PAPER_HOST]
    if not hosts:
        return []
    rows = results["rows"]
    grid = []
    for host in (PAPER_HOST, *hosts):
        label = host_title(host) + (" (the table above)" if host == PAPER_HOST else "")
        grid.append([label, _ap_cell(_host_entry(rows, host, "mrae", template=2)),
                     _ap_cell(_host_entry(rows, host, "baseline"), with_name=True),
                     _ap_cell(_host_entry(rows, host, "fusion", extractor="sum"))])
    host_rows = [e for e in rows if host_of(e) in hosts]
    names = " and ".join(host_title(h) for h in hosts)
    lines = [
        "## Does the ordering hold in one-stage hosts?",
        "",
        f"MRAE template 2, the best single level and sum again, in torchvision's {names} heads "
        "instead of Faster R-CNN (`configs/synth/hosts/`, docs/hosts_and_export.md), with the "
        "budget above: the same data, trunk, input size, schedule, batch and learning rate for "
        "every row; only the host changes. RetinaNet puts Faster R-CNN's RPN anchors (the same "
        "clustered sizes and ratios) on every position of the extractor's map, FCOS one point per "
        "position; each trains its own head (4 + 4 convolutions; `head` above is Faster R-CNN's "
        "box head), and Faster R-CNN's RPN and RoI-head sample counts do not apply. Each host's "
        "claims are judged as above, on that host's rows alone: MRAE template 2 against the "
        "host's best single level at the paper's ratio, and against sum in direction only (the "
        "paper gives no number for sum).",
        "",
        write_table(["host", "MRAE template 2", "best single level", "sum"], grid),
        "",
        "AP x100 on the val split, mean ± sample standard deviation over seeds.",
        "",
        *[f"- {line}" for line in discuss_hosts(rows, hosts, results.get("pending"))],
        "",
    ]
    if host_rows:
        lines += [markdown_table(host_rows), "",
                  f"Time per run of these rows: {run_minutes(host_rows)}.", ""]
        spread = seed_spread(host_rows)
        lines += [spread, ""] if spread else []
    return lines


# the rows the NWD comparison sets side by side: (words, role, model settings)
NWD_ROWS = (("single level", "baseline", {}), ("MRAE template 2", "mrae", {"template": 2}),
            ("sum", "fusion", {"extractor": "sum"}))


def _similarity_entry(rows: list[dict], similarity: str, role: str, **model: Any) -> dict | None:
    """The paper's host's row of `role` with these settings under `similarity` (the best by mean
    AP among several), finished or diverged; None where none has run."""
    found = [e for e in rows if setting_of(e, "box_similarity") == similarity and host_of(e) == PAPER_HOST
             and e.get("role") == role and all(setting_of(e, k) == v for k, v in model.items())]
    return max(found, key=lambda e: (bool(e["seeds"]), mean_ap(e) if e["seeds"] else 0.0), default=None)


def run_trunks(entry: dict) -> dict[str, int]:
    """The trunk files (sha256, first 16 digits) the row's finished runs began from, with their
    run counts; ``not recorded`` for runs whose record keeps none."""
    trunks: dict[str, int] = {}
    for run in entry.get("runs") or []:
        trunk = run.get("trunk")
        sha = str(trunk.get("sha256")) if isinstance(trunk, dict) and trunk.get("sha256") else "not recorded"
        trunks[sha] = trunks.get(sha, 0) + 1
    return trunks


def trunk_of_comparison(rows: list[dict], a: str, b: str) -> str:
    """``single C2, NWD / single C2: trunk `b276ada8141fe852` (6 runs)``, or the trunks of each
    side where the two rows' runs did not all begin from one file (then the comparison compares
    trunks too)."""
    entries = {e["name"]: e for e in rows}
    sides = [run_trunks(entries[name]) for name in (a, b) if name in entries]
    shas = {sha for side in sides for sha in side}
    if len(shas) == 1:
        sha = shas.pop()
        runs = sum(n for side in sides for n in side.values())
        return f"{a} / {b}: " + (f"trunk `{sha}` ({runs} runs)" if sha != "not recorded"
                                 else f"trunk not recorded ({runs} runs)")
    def listed(side: dict[str, int]) -> str:
        return ", ".join(f"`{sha}` ({n} run{'s' * (n != 1)})" if sha != "not recorded"
                         else f"not recorded ({n} run{'s' * (n != 1)})" for sha, n in side.items())
    return (f"{a} / {b}: several trunks, so the comparison compares trunks too ({a}: "
            f"{listed(sides[0])}; {b}: {listed(sides[1]) if len(sides) > 1 else '?'})")


def nwd_section(results: dict[str, Any]) -> list[str]:
    """The page's section on label assignment by NWD against IoU (issue 33): each extractor's AP
    under both, the claims (:func:`mrae.apps.study.claims.nwd_claims`: NWD beats IoU extractor by
    extractor; MRAE's order under NWD) with whether the order agrees with IoU's, and the trunk
    each comparison's runs began from; empty for a study without NWD rows (finished or pending)."""
    rows, pending = results["rows"], results.get("pending")
    if "nwd" not in similarities(rows, pending):
        return []
    grid = [[words, _ap_cell(_similarity_entry(rows, "iou", role, **model), with_name=True),
             _ap_cell(_similarity_entry(rows, "nwd", role, **model), with_name=True)]
            for words, role, model in NWD_ROWS]
    claims = with_lacking(nwd_claims, rows, pending)
    lines = [
        "## NWD assignment against IoU",
        "",
        "Label assignment by the Normalized Gaussian Wasserstein Distance (NWD; Wang et al. 2021) in "
        "place of IoU, in the RPN's and the RoI head's matching (`box_similarity: nwd`), with the "
        "budget above: only the similarity changes between a row and its NWD twin. Each NWD row is "
        "judged against the IoU row of its extractor, paired by seed, at the NWD paper's ratio; then "
        "MRAE's order (against the best single level and against sum) on the NWD rows alone, beside "
        "the same order under IoU.",
        "",
        write_table(["extractor", "IoU", "NWD"], grid),
        "",
        "AP x100 on the val split, mean ± sample standard deviation over seeds.",
        "",
        *[f"- {describe(claim, pending_count(pending))}" for claim in claims],
        "",
    ]
    order = [(judge_claim(claim, rows), claims_by_id(claims).get(under(claim, NWD).key))
             for claim in ORDER_CLAIMS]
    judged = [(iou, nwd) for iou, nwd in order if nwd is not None]
    if judged:
        lines += ["Does MRAE's order hold under NWD? Each order's verdict under IoU and under NWD "
                  "(**cannot say** where either is undecided or not judged):", "",
                  write_table(["order", "IoU", "NWD", "agree"],
                              [[iou["title"], _verdict_cell(iou), _verdict_cell(nwd),
                                agreement(iou["verdict"], nwd["verdict"])] for iou, nwd in judged]),
                  ""]
    pairs = list(dict.fromkeys((c["a"], c["b"]) for claim in claims for c in claim["comparisons"]))
    if pairs:
        lines += ["The trunk file (sha256, first 16 digits) each comparison's runs began from:", "",
                  *[f"- {trunk_of_comparison(rows, a, b)}" for a, b in pairs], ""]
    return lines


def claims_by_id(claims: list[dict]) -> dict[str, dict]:
    return {claim["id"]: claim for claim in claims}


def _verdict_cell(claim: dict) -> str:
    return f"**{claim['verdict']}**" if claim["verdict"] else "not judged"
