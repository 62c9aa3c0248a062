"""The finished runs aggregated into the study's results: one entry per row (mean and spread over
seeds, the runs, their evaluation curves, the attention) and the results dict that ``results.json``
holds, from which the page and the README block are rendered."""

from __future__ import annotations

import functools
import math
import subprocess
import time
import warnings
from typing import Any

from mrae.apps.study.facts import box_similarity, fpn_anchors
from mrae.apps.study.records import BadRecord, eval_curve, read_final, read_record
from mrae.apps.study.spec import Row, Study, row_config, run_dir

RESULTS_FORMAT = 1
MIXED_REASON = ("the control for the mixed row: MRAE template 2 trained as many steps as the mixed "
                "row's template-1 run and its continuation together")


def _model(cfg) -> dict[str, Any]:
    m = cfg.model
    return {"detector": m.detector, "extractor": m.extractor, "level": int(m.level),
            "template": int(m.template), "mode": m.mode, "fpn_anchors": fpn_anchors(m),
            "pretrained": m.pretrained, "box_similarity": box_similarity(m)}


def summarize(study: Study, seeds_override: int | None = None, quick: bool = False) -> list[dict]:
    """Mean and spread over seeds of every row with a finished run, with its convergence curves
    (a run whose result is a bad record, :class:`~mrae.apps.study.records.BadRecord`, is left out).

    Each entry: name, role, config, model (detector, extractor, level, template, mode, fpn_anchors,
    pretrained and box_similarity of the row's config), init_from, schedule_scale, steps, seeds (those finished without diverging),
    mean, std (sample standard deviation over those seeds), runs (their final metrics), curves, attention (mean over seeds,
    or None), diverged ({seed: message}), stalled ({seed: {loss part: {"since": step, "value": v}}}
    of the finished runs in which a loss part stopped moving), step_offset (the steps of the run it
    continues).
    """
    import numpy as np

    summary: list[dict] = []
    for row in study.rows:
        seeds = min(row.seeds, seeds_override) if seeds_override else row.seeds
        runs, diverged, curves = [], [], {}
        for seed in range(seeds):
            done = run_dir(study, row, seed) / "final_metrics.json"
            try:
                kept = None if done.is_file() else read_record(study, row, seed, quick)
                if done.is_file():
                    record, curves[seed] = read_final(done), eval_curve(run_dir(study, row, seed))
                elif kept is not None:  # the folder is gone; the study's ledger has the run
                    record, curves[seed] = kept["final"], kept["curve"]
                else:
                    continue
            except BadRecord:
                continue  # never counted (records.bad_records names it)
            (diverged if "diverged" in record else runs).append((seed, record))
        if not runs and not diverged:
            continue
        keys = [k for k, v in runs[0][1].items() if isinstance(v, int | float)] if runs else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a metric NaN in every run: NaN
            mean = {k: float(np.nanmean([_number(r.get(k)) for _, r in runs])) for k in keys}
            std = {k: float(np.nanstd([_number(r.get(k)) for _, r in runs], ddof=1)) if len(runs) > 1
                   else 0.0 for k in keys}
        attention = [r["attention"] for _, r in runs if r.get("attention")]
        parent = next((e for e in summary if e["name"] == row.init_from), None)
        offset = max((c[-1][0] for c in parent["curves"] if c), default=0) if parent else 0
        cfg = row_config(study, row, quick=quick)
        summary.append(
            {
                "name": row.name,
                "role": row.role,
                "config": str(row.config),
                "model": _model(cfg),
                "init_from": row.init_from,
                "schedule_scale": row.schedule_scale,
                "steps": int(cfg.train.steps),
                "seeds": [seed for seed, _ in runs],
                "mean": mean,
                "std": std,
                "runs": [r for _, r in runs],
                "curves": [curves[seed] for seed, _ in runs],
                "attention": np.mean(attention, axis=0).tolist() if attention else None,
                "diverged": {str(seed): record["diverged"] for seed, record in diverged},
                "stalled": {str(seed): record["stalled"] for seed, record in runs if record.get("stalled")},
                "step_offset": offset,
            }
        )
    return summary


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def commit() -> str:
    """The checkout's commit, and whether it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")


def _epochs(images_seen: int, data) -> float | None:
    """Training images seen over the training set's size; None where the annotation file cannot
    be read (a page rendered on a machine without the data)."""
    if data.train_images is None:
        return images_seen / int(data.synthetic.train_images)
    count = _image_count(str(data.train_annotations))
    return images_seen / count if count else None


@functools.lru_cache(maxsize=8)
def _image_count(path: str) -> int | None:
    """The number of images in a COCO file (read once per report for all rows), None if unreadable."""
    from mrae.data.validate import load_coco_json
    from mrae.errors import MraeError

    try:
        return len(load_coco_json(path, fix_boxes=True)["images"])
    except (MraeError, OSError):
        return None


def _row_budget(cfg, scale: int) -> dict[str, Any]:
    """What every row must share: the schedule (divided by the row's scale), data and model size."""
    from mrae.engine.config import host_setting

    t, d, m = cfg.train, cfg.data, cfg.model
    synthetic = d.train_images is None
    steps = int(t.steps) // scale
    return {
        "steps": steps,
        "batch_size": int(t.batch_size),
        "epochs": _epochs(steps * int(t.batch_size), d),
        "lr": float(t.lr),
        "momentum": float(t.momentum),
        "milestones": [int(s) // scale for s in t.milestones],
        "warmup_steps": int(t.warmup_steps) // scale,
        "eval_every": int(t.eval_every) // scale,
        "backbone": m.backbone,
        "pretrained": m.pretrained,
        "head": host_setting(m, "head"),  # the box head; None for a host without one (one-stage)
        "out_channels": int(m.out_channels),
        "min_size": int(m.min_size),
        "max_size": int(m.max_size),
        "train_crop": [int(v) for v in d.train_crop] if d.train_crop is not None else None,
        "data": (
            f"synthetic data: {d.synthetic.train_images} train and {d.synthetic.val_images} val "
            f"images (seed {d.synthetic.seed})" if synthetic
            else _coco_data(d)
        ),
    }


def _coco_data(d) -> str:
    """``data: train.json (train) and val.json (val), images in DIR``: the annotation files name
    the splits (both often share one images folder)."""
    if d.val_annotations is None:
        return f"data: {d.train_annotations} (train), images in {d.train_images}; no val split"
    if d.train_images == d.val_images:
        return f"data: {d.train_annotations} (train) and {d.val_annotations} (val), images in {d.train_images}"
    return (f"data: {d.train_annotations} with images in {d.train_images} (train), "
            f"{d.val_annotations} with images in {d.val_images} (val)")


def budget(study: Study, quick: bool = False) -> dict[str, Any]:
    """The study's budget (the first row's), the rows that differ from it, and the rows with a
    scaled or continued schedule, each with the reason."""
    rows: list[tuple[Row, Any]] = [(row, row_config(study, row, quick=quick)) for row in study.rows]
    first = _row_budget(rows[0][1], rows[0][0].schedule_scale)
    steps = {row.name: int(cfg.train.steps) for row, cfg in rows}
    scaled = [
        {"name": row.name, "role": row.role, "schedule_scale": row.schedule_scale,
         "steps": steps[row.name], "milestones": [int(s) for s in cfg.train.milestones],
         "warmup_steps": int(cfg.train.warmup_steps), "eval_every": int(cfg.train.eval_every),
         "reason": MIXED_REASON if row.role == "mrae_long" else "its schedule_scale in the study file"}
        for row, cfg in rows if row.schedule_scale > 1
    ]
    continued = [
        {"name": row.name, "init_from": row.init_from, "steps": steps[row.name],
         "total_steps": steps[row.name] + steps[row.init_from]}
        for row, _ in rows if row.init_from
    ]
    return {
        **first,
        # a row of role start differs from the others in its initial weights by design
        "differs": [row.name for row, cfg in rows
                    if {**_row_budget(cfg, row.schedule_scale),
                        **({"pretrained": first["pretrained"]} if row.role == "start" else {}),
                        # a host without a box head (one-stage) shares the others' by definition
                        **({"head": first["head"]} if _row_budget(cfg, 1)["head"] is None else {})} != first],
        "starts": [{"name": row.name, "pretrained": cfg.model.pretrained} for row, cfg in rows if row.role == "start"],
        "scaled": scaled,
        "continued": continued,
    }


def _machine() -> dict[str, Any]:
    import platform

    import torch

    return {"machine": platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": "CUDA" if torch.cuda.is_available() else "CPU"}


def pinned_torch() -> str | None:
    """The torch version the project's install pins (``torch==X`` in its requirements), None
    where the package metadata is missing or pins none."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires("mrae") or []
    except PackageNotFoundError:
        return None
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        if name.strip() == "torch" and version:
            return version.split(";")[0].strip()
    return None


def trained_on(summary: list[dict]) -> list[dict[str, Any]]:
    """Where the rows' runs trained, one entry per machine (device, torch, mixed precision), each
    with its rows and run count, in order of first appearance. Runs recorded before the study kept
    it trained on the CPU with the pinned torch (:func:`pinned_torch`); torch versions are compared
    without their build label (``2.14.1+cu130`` is ``2.14.1``: the same code, built for CUDA)."""
    groups: dict[str, dict[str, Any]] = {}
    cpu = {"device": "CPU", "torch": pinned_torch(), "mixed_precision": False}
    for entry in summary:
        for run in entry["runs"]:
            # a machine is its device, torch and precision (not its speed at the time)
            machine = {k: v for k, v in {**cpu, **(run.get("machine") or {})}.items() if k in cpu}
            if machine["torch"]:
                machine["torch"] = str(machine["torch"]).split("+")[0]
            _tally(groups.setdefault(repr(sorted(machine.items())), {**machine, "rows": [], "runs": 0}),
                   entry["name"])
    return list(groups.values())


def _tally(group: dict[str, Any], row: str) -> None:
    """One more run in `group` (its ``runs`` count), of `row` (added to its ``rows`` once)."""
    group["runs"] += 1
    if row not in group["rows"]:
        group["rows"].append(row)


def trunks(summary: list[dict]) -> dict[str, Any]:
    """Which pretrained trunk file the runs began from: ``groups`` (one per file, in order of first
    appearance: ``pretrained``, ``sha256``, ``held_out_accuracy`` where known, ``runs``, ``rows``)
    and ``unrecorded`` (runs of rows with a pretrained trunk whose record does not say which one:
    finished before the study kept it; ``runs`` and ``rows``). Rows with a random start or
    ImageNet weights have no trunk file and are in neither."""
    groups: dict[str, dict[str, Any]] = {}
    unrecorded: dict[str, Any] = {"runs": 0, "rows": []}
    for entry in summary:
        if entry.get("model", {}).get("pretrained") in (None, "imagenet"):
            continue
        for run in entry["runs"]:
            trunk = run.get("trunk")
            _tally(unrecorded if not isinstance(trunk, dict) else
                   groups.setdefault(str(trunk.get("sha256")), {**trunk, "runs": 0, "rows": []}), entry["name"])
    return {"groups": list(groups.values()), "unrecorded": unrecorded}


def pending_runs(study: Study, summary: list[dict], seeds_override: int | None = None,
                 quick: bool = False) -> list[dict[str, Any]]:
    """The study file's runs with no result yet (neither finished nor diverged), one entry per row
    with any, in the study file's order: ``{"name", "role", "model", "seeds": [seed, ...]}`` (role
    and model as in the summary entries, so the claims can tell which rows the study runs at all)."""
    done = {e["name"]: set(e["seeds"]) | {int(s) for s in e["diverged"]} for e in summary}
    pending = []
    for row in study.rows:
        count = min(row.seeds, seeds_override) if seeds_override else row.seeds
        missing = [seed for seed in range(count) if seed not in done.get(row.name, set())]
        if missing:
            pending.append({"name": row.name, "role": row.role,
                            "model": _model(row_config(study, row, quick=quick)), "seeds": missing})
    return pending


def build_results(study: Study, summary: list[dict], command: str, commit_id: str,
                  quick: bool = False, ms_machine: str | None = None) -> dict[str, Any]:
    """Everything the page and the README block are rendered from (``results.json``); ``hosts``:
    the hosts of the study's rows (``model.detector``), in the study file's order, finished or not;
    ``pending``: the study file's runs without a result yet (:func:`pending_runs`; empty once the
    study is complete, so a claim without its rows then means the study does not run them);
    ``ms_machine``: the machine's speed and load when the rows' inference was timed
    (:func:`mrae.apps.study.measure.measure_speed`)."""
    from mrae.apps.study.claims import judge

    hosts = list(dict.fromkeys(row.detector for row in study.rows))
    pending = pending_runs(study, summary, 1 if quick else None, quick)
    return clean({
        "format": RESULTS_FORMAT,
        "study": str(study.source),
        "title": study.title,
        "about": study.about,
        "compare": ({"results": str(study.compare.results), "this": study.compare.this,
                     "other": study.compare.other,
                     **({"title": study.compare.title} if study.compare.title else {})}
                    if study.compare else None),
        "command": command,
        "commit": commit_id,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": quick,
        "machine": _machine(),
        "trained_on": trained_on(summary),
        "trunks": trunks(summary),
        "budget": budget(study, quick),
        "ms_images": max((e.get("ms_images", 0) for e in summary), default=0),
        "ms_machine": ms_machine,
        "hosts": hosts,
        "pending": pending,
        "rows": summary,
        "claims": judge(summary, hosts, pending),
    })


def clean(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, so that the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value
