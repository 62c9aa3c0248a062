"""The study's results as people read them, rendered from ``results.json`` alone: the tables, the
plots, the results page (``docs/results.md``) and the README's headline block.

:func:`render_report` reads the JSON and writes the rest; rendering twice from the same JSON gives
the same page byte for byte (every date and number on it comes from the JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrae.apps.study.claims import (
    HOST_NAMES,
    LEARNED_AP,
    ONE_STAGE_HOSTS,
    PAPER_HOST,
    discuss,
    discuss_hosts,
    host_of,
    mean_ap,
)
from mrae.apps.study.compare import COMPARE_BEGIN, COMPARE_END, comparison_section
from mrae.apps.study.compare import readme_block as comparison_block
from mrae.apps.study.plots import plot_attention, plot_convergence
from mrae.errors import ConfigError
from mrae.files import write_text_atomic
from mrae.inputs import JSON_LIMIT, read_text, shorten
from mrae.tables import markdown_table as write_table

METRIC_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "AR1", "AR10", "AR100", "ARs", "ARm")
HEADLINE_COLUMNS = ("AP", "AP50", "APs", "AR100")
SPREAD_BAR = 0.05  # a row's seed spread the budget aims at: sample std of AP at most ~5% of its mean
README_BEGIN = "<!-- mrae study: headline table begin -->"
README_END = "<!-- mrae study: headline table end -->"


# ------------------------------------------------------------------------------ tables


def paper_rows(rows: list[dict]) -> list[dict]:
    """The rows of the paper's host (Faster R-CNN): the main table, the plots' lines, the README."""
    return [e for e in rows if host_of(e) == PAPER_HOST]


def study_hosts(results: dict[str, Any]) -> list[str]:
    """The hosts of the study's rows; a JSON written before they were kept: Faster R-CNN and the
    host study's (its rows may not have run yet)."""
    return list(results.get("hosts") or (PAPER_HOST, *ONE_STAGE_HOSTS))


def _cell(entry: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    mean = entry["mean"].get(key)
    if mean is None or mean != mean:  # None / NaN: no ground truth in this bucket
        return "–"
    text = f"{mean * scale:.{digits}f}"
    std = entry["std"].get(key)
    if len(entry["seeds"]) > 1 and std is not None:
        text += f" ± {std * scale:.{digits}f}"
    return text


def markdown_table(rows: list[dict]) -> str:
    """The study table: Table 2's columns (x100), then ms/image, parameters and GFLOPs."""
    return _table(rows, METRIC_COLUMNS, model_size=True)


def headline_table(rows: list[dict]) -> str:
    """The README's short table: AP, AP50, APs, AR100 (x100) and ms/img of every row."""
    return _table(rows, HEADLINE_COLUMNS, model_size=False)


def _table(rows: list[dict], metric_columns: tuple[str, ...], model_size: bool) -> str:
    """A markdown table of `metric_columns` (x100) and ms/img per row; with `model_size`, also
    parameters and GFLOPs. A row whose every seed diverged says so in each cell."""
    sizes = ["params (M)", "GFLOPs"] if model_size else []
    header = ["row", "seeds", *metric_columns, "ms/img", *sizes]
    body = []
    for entry in rows:
        name = entry["name"]
        if entry.get("diverged"):
            name += f" ({len(entry['diverged'])} diverged)"
        if not entry["seeds"]:
            body.append([name, "0", *["diverged"] * (len(header) - 2)])
            continue
        cells = [name, str(len(entry["seeds"]))]
        cells += [_cell(entry, key) for key in metric_columns]
        ms = entry.get("ms_per_image")
        cells.append(f"{ms:.0f}" if ms is not None else _cell(entry, "ms_per_image", 1.0, 0))
        if model_size:
            params = entry["mean"].get("params_M")
            cells += [
                "–" if params is None else f"{params:.1f}",  # the same for every seed
                _cell(entry, "GFLOPs", 1.0, 1),  # varies a little: the box head runs on each proposal
            ]
        body.append(cells)
    return write_table(header, body)


# ------------------------------------------------------------------------------ the page


def _start(budget: dict[str, Any], short: bool = False) -> str:
    """How every row's trunk starts, in words (`short`: for the budget line)."""
    value, backbone = budget.get("pretrained"), budget["backbone"]
    if value is None:
        return "random" if short else f"a randomly initialised {backbone}"
    if value == "synthetic":
        return ("pretrained offline on synthetic crops, `mrae pretrain`" if short
                else f"the same {backbone} trunk, pretrained offline on synthetic crops (`mrae pretrain`),")
    if value == "dataset":
        return ("pretrained offline on crops of the training set's own boxes, `mrae pretrain "
                "--annotations`" if short else f"the same {backbone} trunk, pretrained offline on "
                "crops of the training set's own labelled boxes (`mrae pretrain --annotations`),")
    if value == "imagenet":
        return "ImageNet" if short else f"an ImageNet-initialised {backbone}"
    return str(value) if short else f"the {backbone} weights {value}"


def budget_lines(results: dict[str, Any]) -> list[str]:
    """The budget shared by every row, then each row with a scaled or continued schedule, and why."""
    b = results["budget"]
    epochs = f", about {b['epochs']:.2f} epochs" if b.get("epochs") is not None else ""
    same = ("identical for every row" if not b.get("differs")
            else f"the first row's; different for {', '.join(b['differs'])}")
    lines = [
        f"- budget, {same}: {b['steps']} steps of batch {b['batch_size']}{epochs} (SGD, lr {b['lr']}, "
        f"momentum {b['momentum']}, milestones {b['milestones']}, warm-up {b['warmup_steps']}), "
        f"evaluated every {b['eval_every']} steps; backbone {b['backbone']} (initial weights: "
        f"{_start(b, short=True)}), "
        f"head {b['head']}, out_channels {b['out_channels']}, input min/max side "
        f"{b['min_size']}/{b['max_size']}"
        + (f", trained on random {b['train_crop'][0]}x{b['train_crop'][1]} crops at that scale (full "
           "images in evaluation)" if b.get("train_crop") else "")
        + f"; {b['data']}"
    ]
    for s in b.get("scaled", []):
        lines.append(
            f"- scaled schedule: **{s['name']}** trains {s['schedule_scale']}x the steps "
            f"({s['steps']} steps, milestones {s['milestones']}, warm-up {s['warmup_steps']}"
            + (f", evaluated every {s['eval_every']} steps" if s.get("eval_every") else
               "; the evaluation and checkpoint intervals are unchanged")
            + f"): {s['reason']}"
        )
    for c in b.get("continued", []):
        lines.append(
            f"- continued: **{c['name']}** starts from the final weights of {c['init_from']} and "
            f"trains {c['steps']} more steps ({c['total_steps']} in all)"
        )
    spread = seed_spread(paper_rows(results["rows"]))  # the host rows: their own section
    return lines + ([spread] if spread else [])


def seed_spread(rows: list[dict]) -> str | None:
    """The budget's check: each row's seed spread (sample standard deviation of AP over its mean),
    and the rows above :data:`SPREAD_BAR`; None while no row has two seeds."""
    spreads = [(e["name"], e["std"]["AP"] / e["mean"]["AP"]) for e in rows
               if len(e["seeds"]) > 1 and e["mean"].get("AP") and e["std"].get("AP") is not None]
    if not spreads:
        return None
    over = [name for name, spread in spreads if spread > SPREAD_BAR]
    return (f"- seed spread (sample standard deviation of a row's AP over its mean; the budget aims at "
            f"{100 * SPREAD_BAR:.0f}% or less, where the seeds agree against the gaps between rows): "
            + ", ".join(f"{name} {100 * spread:.1f}%" for name, spread in spreads)
            + f"; {len(spreads) - len(over)} of {len(spreads)} rows within {100 * SPREAD_BAR:.0f}%"
            + (f", above it: {', '.join(over)}" if over else ""))


def _span(values: list[float]) -> str:
    return f"{min(values):.1f} to {max(values):.1f} minutes" if values else "not measured"


def pretraining_section(results: dict[str, Any]) -> list[str]:
    """The pretraining comparison: the rows of role ``start`` (MRAE from another trunk start)
    against the study's own row of the same template (role ``mrae``), each with the interval of
    the ratio of their AP (paired by seed; the paper gives no ratio, so held / did not hold /
    undecided in direction); empty without such rows."""
    from mrae.apps.study.claims import compare, describe_comparison, find

    rows = results["rows"]
    starts = [e for e in rows if e.get("role") == "start" and host_of(e) == PAPER_HOST]
    if not starts:
        return []
    template = starts[0]["model"].get("template", 2)
    reference = next(iter(find(rows, "mrae", template=template)), None)
    entries = ([reference] if reference else []) + starts
    grid = [[e["name"], _start({"pretrained": e["model"].get("pretrained", "?"),
                                "backbone": results["budget"]["backbone"]}, short=True),
             _ap_cell(e)] for e in entries]
    lines = [
        "## What the trunk's pretraining is worth",
        "",
        f"MRAE template {template} at the budget above from each trunk start; only "
        "`model.pretrained` (and the pretraining it asks for) differs between these rows.",
        "",
        write_table(["row", "trunk start", "AP"], grid),
        "",
    ]
    if reference is None:
        return lines + [f"The study's own MRAE template {template} row has no finished run yet: "
                        "no comparison.", ""]
    for entry in starts:
        c = compare(reference, entry, None)
        lines.append(f"- **{reference['name']} against {entry['name']}**: "
                     f"{describe_comparison(c, c['verdict'])}.")
    return lines + [""]


def run_minutes(rows: list[dict]) -> str:
    """``training A to B minutes, evaluation C to D minutes``: the range over the rows' finished
    runs of the training clock (steps and their data wait) and of the evaluations' clock (runs
    finished before the study kept it have none)."""
    runs = [r for e in rows for r in e["runs"]]
    train = [r["train_seconds"] / 60 for r in runs if r.get("train_seconds")]
    evaluation = [r["eval_seconds"] / 60 for r in runs if r.get("eval_seconds") is not None]
    text = f"training {_span(train)}"
    if evaluation:
        text += f", evaluation {_span(evaluation)}" + (
            f" ({len(evaluation)} of {len(runs)} runs; the others finished before it was kept)"
            if len(evaluation) < len(runs) else "")
    return text


def conclusion(results: dict[str, Any]) -> str:
    """One paragraph: what the study concludes (the claims by verdict) and what it cannot."""
    from mrae.apps.study.claims import paper_claims

    claims = [c for c in paper_claims(results["rows"]) if c["verdict"] is not None]
    if not claims:
        return "**In short**: no claim could be judged yet (the rows each claim needs are not finished)."
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
        f"this holds {data}, for the paper's ImageNet "
        f"ResNet-101 (here {b['backbone']}, initial weights {_start(b, short=True)}), or after the "
        f"paper's ~1M steps (here {b['steps']}); and with {'/'.join(map(str, seeds))} seeds a row the "
        "intervals are wide (a t-interval with 2 degrees of freedom is 4.3 standard errors each "
        "side), so an undecided claim may be decided by more seeds rather than more steps."
    )


def _ap_cell(entry: dict | None, with_name: bool = False) -> str:
    """``51.0 ± 1.2 (3 seeds)`` (AP x100 over the finished seeds), ``diverged (2 seeds)`` or
    ``not run yet``; with `with_name`, the row's name first."""
    if entry is None:
        return "not run yet"
    name = f"{entry['name']}: " if with_name else ""
    if not entry["seeds"]:
        return f"{name}diverged ({_seeds(len(entry.get('diverged') or {}))})"
    text = f"{name}{_cell(entry, 'AP')} ({_seeds(len(entry['seeds']))})"
    if entry.get("diverged"):
        text += f", {len(entry['diverged'])} diverged"
    return text


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _host_entry(rows: list[dict], host: str, role: str, **model: Any) -> dict | None:
    """The host's row of `role` with these model settings (the best by mean AP among several),
    finished or diverged; None where none has run."""
    found = [e for e in rows if host_of(e) == host and e.get("role") == role
             and all(e.get("model", {}).get(k) == v for k, v in model.items())]
    return max(found, key=lambda e: (bool(e["seeds"]), mean_ap(e) if e["seeds"] else 0.0), default=None)


def host_section(results: dict[str, Any]) -> list[str]:
    """The page's section on the host study (issue 18), for the study's hosts other than Faster
    R-CNN; empty for a study without them. Rows that have not run are said so."""
    hosts = [h for h in study_hosts(results) if h != PAPER_HOST]
    if not hosts:
        return []
    rows = results["rows"]
    grid = []
    for host in (PAPER_HOST, *hosts):
        label = HOST_NAMES.get(host, host) + (" (the table above)" if host == PAPER_HOST else "")
        grid.append([label, _ap_cell(_host_entry(rows, host, "mrae", template=2)),
                     _ap_cell(_host_entry(rows, host, "baseline"), with_name=True),
                     _ap_cell(_host_entry(rows, host, "fusion", extractor="sum"))])
    host_rows = [e for e in rows if host_of(e) in hosts]
    names = " and ".join(HOST_NAMES.get(h, h) for h in hosts)
    lines = [
        "## Does the ordering hold in one-stage hosts?",
        "",
        f"MRAE template 2, the best single level and sum again, in torchvision's {names} heads "
        "instead of Faster R-CNN (`configs/synth/hosts/`, docs/hosts_and_export.md), with the budget "
        "above: the same data, trunk, input size, schedule, batch and learning rate for every row; "
        "only the host changes. RetinaNet puts Faster R-CNN's RPN anchors (the same clustered sizes "
        "and ratios) on every position of the extractor's map, FCOS one point per position; each "
        "trains its own head (4 + 4 convolutions; `head` above is Faster R-CNN's box head), and "
        "Faster R-CNN's RPN and RoI-head sample counts do not apply. Each host's claims are judged "
        "as above, on that host's rows alone: MRAE template 2 against the host's best single level "
        "at the paper's ratio, and against sum in direction only (the paper gives no number for sum).",
        "",
        write_table(["host", "MRAE template 2", "best single level", "sum"], grid),
        "",
        "AP x100 on the val split, mean ± sample standard deviation over seeds.",
        "",
        *[f"- {line}" for line in discuss_hosts(rows, hosts)],
        "",
    ]
    if host_rows:
        lines += [markdown_table(host_rows), "",
                  f"Time per run of these rows: {run_minutes(host_rows)}.", ""]
        spread = seed_spread(host_rows)
        lines += [spread, ""] if spread else []
    return lines


def trained_on_lines(groups: list[dict]) -> list[str]:
    """The page's line on where the runs trained; the rows of each machine where there are several."""
    def machine(group: dict) -> str:
        return ", ".join([group["device"], *([f"torch {group['torch']}"] if group.get("torch") else []),
                          *(["mixed precision"] if group.get("mixed_precision") else [])])

    if len(groups) == 1:
        return [f"- runs trained on: {machine(groups[0])} (all {groups[0]['runs']} runs)"]
    return ["- runs trained on several machines (a claim between rows of two machines compares "
            "them too):"] + [f"  - {machine(g)}: {g['runs']} runs, rows {', '.join(g['rows'])}"
                             for g in groups]


def render_page(results: dict[str, Any], convergence: str, attention: str | None) -> str:
    """The results page (markdown) for `results`; the plots are linked by file name."""
    rows = results["rows"]
    machine = results["machine"]
    quick = (["", "**A `--quick` run: tiny data and a few steps, a test of the pipeline, not a "
              "result.**"] if results.get("quick") else [])
    title = results.get("title") or "Reproducing the paper's Tables 2 and 3 on the synthetic small-object benchmark"
    about = ["", results["about"]] if results.get("about") else []
    lines = [
        f"# {title}",
        "",
        "Generated by `mrae study` from `results.json` beside this page; no number on this page was "
        "written by hand.",
        *quick,
        *about,
        "",
        f"- command: `{results['command']}`",
        f"- commit: `{results['commit']}`",
        f"- date: {results['date']}",
        f"- machine: {machine['machine']}, {machine['threads']} torch threads, torch {machine['torch']}, "
        f"{machine['device']}",
        *trained_on_lines(results.get("trained_on") or []),
        *budget_lines(results),
        f"- time per run (the run's own clocks, summed over resumes; with `--jobs N`, N runs share "
        f"the cores): {run_minutes(paper_rows(rows))}",
        "",
        "AP and AR are COCO's (pycocotools), x100, on the val split; mean ± sample standard "
        "deviation over seeds where a row has several. ms/img: inference of each row's first "
        f"model, batch 1, on the first {results['ms_images']} val images, measured one row after "
        "another in one process after training; GFLOPs of one image at the input size above.",
        "",
        f"Read it as a comparison at a fixed, small budget: every row starts from "
        f"{_start(results['budget'])} and trains the steps above, where the paper fine-tuned an "
        "ImageNet-initialised ResNet-101 for about 1M steps. Absolute APs are therefore far below the "
        "paper's; what the table can show is which extractor learns the most in the same budget.",
        "",
        markdown_table(paper_rows(rows)),
        "",
        "## What held and what did not",
        "",
        conclusion(results),
        "",
        "Each claim is judged on the ratio of the two rows' AP (x100) it compares, against the "
        "ratio the paper reports: a 95% t-interval on log AP, **paired by seed** where both rows ran "
        "the same seeds (seed k draws the same batches, flips and crops in every row), Welch's "
        "unpaired interval otherwise (both are printed, with whether pairing narrowed it). "
        "Verdicts: **held (at the paper's size)** where the interval lies above 1 and reaches the "
        "paper's ratio; **held but smaller than the paper's** where it lies above 1 but below the "
        "paper's ratio; **did not hold (the other direction)** where it lies below 1; **not at the "
        "paper's size** where it includes 1 but lies below the paper's ratio; **undecided** where "
        "it includes both. A claim the paper makes without a number is held, did not hold or "
        "undecided by whether its interval excludes 1. A side with fewer than 2 seeds gives no "
        f"interval, and a row that did not learn (mean AP under {LEARNED_AP}) decides nothing. "
        "Numbers: mean ± sample standard deviation (seeds), the difference of the means, the ratio "
        "of the geometric means with its interval, the paper's ratio, and Welch's p for reference "
        "(it decides nothing).",
        "",
        *(["The convergence claim is judged on the AP at half the schedule (the evaluation at 50%), "
           "not the area under the curve: the area is dominated by the final AP, which the first "
           "claim already tests, while the paper's claim is that MRAE gets its AP with fewer steps; "
           "at half the schedule the learning rate has not dropped yet (milestones at 70% and 90%).",
           ""] if any(c["id"] == "converges_faster" and c["verdict"] for c in results.get("claims", [])) else []),
        *[f"- {line}" for line in discuss(rows)],
        "",
        *host_section(results),
        *pretraining_section(results),
        *comparison_section(results),
        "## Convergence",
        "",
        f"![AP against training step]({convergence})",
        "",
    ]
    if attention:
        lines += ["## Where the attention rows look", "", f"![mean level weights]({attention})", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ README


def readme_block(results: dict[str, Any], link: str) -> str:
    """The README's headline block, markers included."""
    return (
        f"{README_BEGIN}\n"
        f"Written by `{results['command']}` ({results['date'][:10]}); the full table, the plots, the "
        f"budget and the discussion are in [{link}]({link}).\n\n"
        f"{headline_table(paper_rows(results['rows']))}\n\n"
        + "".join(f"- {line}\n" for line in discuss(results["rows"]))
        + README_END
    )


def update_readme(readme: Path, results: dict[str, Any], report: Path) -> bool:
    """Replace the README's block between the headline markers; False where there is none."""
    return _replace_block(readme, report, README_BEGIN, README_END, lambda link: readme_block(results, link))


def _replace_block(readme: Path, report: Path, first: str, last: str,
                   block: Callable[[str], str | None]) -> bool:
    """Replace the README's text from marker `first` to marker `last` (both kept, as `block` writes
    them) by ``block(link)``, `link` the page's path relative to the README; False where the
    markers are missing or `block` gives None."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    begin, end = text.find(first), text.find(last)
    if begin < 0 or end < begin:
        return False
    try:
        link = str(report.resolve().relative_to(readme.resolve().parent))
    except ValueError:
        link = str(report)
    written = block(link)
    if written is None:
        return False
    write_text_atomic(readme, text[:begin] + written + text[end + len(last):])
    return True


def rejudge(results_json_path: str | Path) -> bool:
    """Judge the claims of a results JSON again from its rows (the verdict rules of this code);
    rewrite the JSON only where they changed. Returns whether it was rewritten."""
    from mrae.apps.study.claims import judge
    from mrae.apps.study.summary import clean
    from mrae.files import write_json_atomic

    path = Path(results_json_path)
    results = json.loads(path.read_text())
    claims = clean(judge(results["rows"], study_hosts(results)))
    if claims == results.get("claims"):
        return False
    results["claims"] = claims
    write_json_atomic(path, results)
    return True


def render_report(results_json_path: str | Path, report: str | Path | None = None,
                  readme: str | Path | None = None, compare_readme: str | Path | None = None) -> Path:
    """Render the page (default: the JSON's path with ``.md``), its two plots beside it and, where
    `readme` is given, the README's headline block, all from the results JSON alone; where the
    results name another study to compare with (``compare``), that study's results JSON too, for
    the page's comparison section and the comparison block of `compare_readme`."""
    results_json_path = Path(results_json_path)
    text = read_text(results_json_path, JSON_LIMIT, what="results JSON", error=ConfigError)
    try:
        results = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{results_json_path}: not a readable results JSON ({shorten(str(error), 80)}); "
                          "run the study again to write it") from None
    if not isinstance(results, dict) or not isinstance(results.get("rows"), list):
        raise ConfigError(f"{results_json_path}: holds no study results (a 'rows' list); run the study "
                          "again to write it")
    report = Path(report) if report else results_json_path.with_suffix(".md")
    report.parent.mkdir(parents=True, exist_ok=True)
    convergence = report.with_name(report.stem + "_convergence.png")
    attention = report.with_name(report.stem + "_attention.png")
    plot_convergence(paper_rows(results["rows"]), convergence)
    has_attention = plot_attention(results["rows"], attention)
    write_text_atomic(report, render_page(results, convergence.name,
                                          attention.name if has_attention else None))
    if readme is not None and update_readme(Path(readme), results, report):
        print(f"headline table written into {readme}")
    if (compare_readme is not None and results.get("compare")
            and _replace_block(Path(compare_readme), report, COMPARE_BEGIN, COMPARE_END,
                               lambda link: comparison_block(results, link))):
        print(f"comparison with the {results['compare']['other']} study written into {compare_readme}")
    return report
