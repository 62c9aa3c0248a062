"""The page's lines on how the rows were trained, from the results JSON: the budget every row
shares (and each row's scaled or continued schedule), the seed spread that budget aims at, the
time per run and the machines the runs trained on.
"""

from __future__ import annotations

from typing import Any

from mrae.apps.study.tables import paper_rows

# a row's seed spread the budget aims at: sample std of AP at most ~5% of its mean
SPREAD_BAR = 0.05


def trunk_start(budget: dict[str, Any], short: bool = False) -> str:
    """How every row's trunk starts, in words (`short`: for the budget line)."""
    value, backbone = budget.get("pretrained"), budget["backbone"]
    if value is None:
        return "random" if short else f"a randomly initialised {backbone}"
    if value == "synthetic":
        return ("pretrained offline on synthetic crops, `mrae pretrain`" if short
                else f"the same {backbone} trunk, pretrained offline on synthetic crops "
                     "(`mrae pretrain`),")
    if value == "dataset":
        return ("pretrained offline on crops of the training set's own boxes, `mrae pretrain "
                "--annotations`" if short else f"the same {backbone} trunk, pretrained offline on "
                "crops of the training set's own labelled boxes (`mrae pretrain --annotations`),")
    if value == "imagenet":
        return "ImageNet" if short else f"an ImageNet-initialised {backbone}"
    return str(value) if short else f"the {backbone} weights {value}"


def budget_lines(results: dict[str, Any]) -> list[str]:
    """The budget shared by every row, then each row with a scaled or continued schedule, and
    why."""
    b = results["budget"]
    epochs = f", about {b['epochs']:.2f} epochs" if b.get("epochs") is not None else ""
    same = ("identical for every row" if not b.get("differs")
            else f"the first row's; different for {', '.join(b['differs'])}")
    if b.get("starts"):
        same += (" (the initial weights aside: " + "; ".join(
            f"{s['name']}: {trunk_start({**b, 'pretrained': s['pretrained']}, short=True)}"
            for s in b["starts"]) + ")")
    lines = [
        f"- budget, {same}: {b['steps']} steps of batch {b['batch_size']}{epochs} (SGD, "
        f"lr {b['lr']}, momentum {b['momentum']}, milestones {b['milestones']}, warm-up "
        f"{b['warmup_steps']}), evaluated every {b['eval_every']} steps; backbone {b['backbone']} "
        f"(initial weights: {trunk_start(b, short=True)}), "
        f"head {b['head']}, out_channels {b['out_channels']}, input min/max side "
        f"{b['min_size']}/{b['max_size']}"
        + (f", trained on random {b['train_crop'][0]}x{b['train_crop'][1]} crops at that scale "
           "(full images in evaluation)" if b.get("train_crop") else "")
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
    return (f"- seed spread (sample standard deviation of a row's AP over its mean; the budget "
            f"aims at {100 * SPREAD_BAR:.0f}% or less, where the seeds agree against the gaps "
            "between rows): "
            + ", ".join(f"{name} {100 * spread:.1f}%" for name, spread in spreads)
            + f"; {len(spreads) - len(over)} of {len(spreads)} rows within {100 * SPREAD_BAR:.0f}%"
            + (f", above it: {', '.join(over)}" if over else ""))


def _span(values: list[float]) -> str:
    return f"{min(values):.1f} to {max(values):.1f} minutes" if values else "not measured"


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


def trained_on_lines(groups: list[dict]) -> list[str]:
    """The page's line on where the runs trained; the rows of each machine where there are
    several."""
    def machine(group: dict) -> str:
        return ", ".join([group["device"],
                          *([f"torch {group['torch']}"] if group.get("torch") else []),
                          *(["mixed precision"] if group.get("mixed_precision") else [])])

    if len(groups) == 1:
        return [f"- runs trained on: {machine(groups[0])} (all {groups[0]['runs']} runs)"]
    return ["- runs trained on several machines (a claim between rows of two machines compares "
            "them too):"] + [f"  - {machine(g)}: {g['runs']} runs, rows {', '.join(g['rows'])}"
                             for g in groups]


def trunk_lines(trunks: dict[str, Any] | None) -> list[str]:
    """The page's line on which pretrained trunk file the runs began from
    (:func:`mrae.apps.study.summary.trunks`); nothing where no run recorded its trunk."""
    groups = (trunks or {}).get("groups") or []
    unrecorded = (trunks or {}).get("unrecorded") or {"runs": 0, "rows": []}
    if not groups:
        return []

    def trunk(group: dict) -> str:
        accuracy = group.get("held_out_accuracy")
        return (f"`{group['sha256']}` (model.pretrained: {group['pretrained']}"
                + (f", held-out accuracy {accuracy:.3f}" if accuracy is not None else "") + ")")

    if len(groups) == 1 and not unrecorded["runs"]:
        return [f"- trunk file (sha256, first 16 digits): every run with a pretrained trunk began from "
                f"{trunk(groups[0])}"]
    kinds = [g["pretrained"] for g in groups]
    mixed = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if not mixed and not unrecorded["runs"]:  # a trunk per pretraining (rows of role start, by design)
        lines = ["- trunk files (sha256, first 16 digits): one per pretraining; every run of a "
                 "pretraining began from its file:"]
    else:
        lines = ["- trunk files (sha256, first 16 digits): the runs "
                 + (f"of one pretraining ({', '.join(mixed)}) began from several" if mixed
                    else "did not all record theirs")
                 + ". Pretraining is bit-reproducible on one machine, not across CPUs (their float "
                 "rounding differs and its SGD steps amplify it), so the same recipe pretrained on two "
                 "machines gives two trunks; a comparison between runs of two trunks compares the "
                 "trunks too:"]
    lines += [f"  - {trunk(g)}: {g['runs']} runs, rows {', '.join(g['rows'])}" for g in groups]
    if unrecorded["runs"]:
        lines.append(f"  - not recorded (finished before the study kept it): {unrecorded['runs']} "
                     f"runs, rows {', '.join(unrecorded['rows'])}")
    return lines
