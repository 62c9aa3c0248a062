"""`mrae study`: the paper's Tables 2 and 3 on one dataset, every row with the same budget.

A study file (``configs/synth/study.yaml``) lists rows; each row names a training config and a
number of seeds, and the mixed row names the row whose checkpoint it continues from. Every run
lives in ``OUT/<row>/seed<k>/``; a run whose ``final_metrics.json`` exists is done and skipped, a
run with a ``last.pth`` is resumed, so an interrupted study picks up where it stopped.

After the runs, the study writes ``OUT/results.json``, the plots and ``docs/results.md``
(``--report``): the table, the convergence plot, the attention plot, the exact command and
commit, the budget per row and a discussion whose every number comes from the results.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mrae.errors import ConfigError

METRIC_COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "AR1", "AR10", "AR100", "ARs", "ARm")


@dataclass(frozen=True)
class Row:
    """One row of the study table."""

    name: str
    config: Path
    seeds: int
    init_from: str | None = None  # name of the row whose final checkpoint this row continues

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name.lower()).strip("_")


@dataclass(frozen=True)
class Study:
    rows: list[Row]
    out: Path
    overrides: list[str]
    quick_overrides: list[str]
    source: Path
    readme: Path | None = None  # README whose headline block the study rewrites (study file's `readme`)


def load_study(path: str | Path, out: str | None = None) -> Study:
    """Read a study file; every config path is relative to the study file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the study file ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rows"), list) or not raw["rows"]:
        raise ConfigError(f"{path}: a study file needs a non-empty list `rows`")
    allowed = {"name", "config", "seeds", "init_from"}
    rows: list[Row] = []
    for i, item in enumerate(raw["rows"]):
        if not isinstance(item, dict) or "name" not in item or "config" not in item:
            raise ConfigError(f"{path}: rows[{i}] needs `name` and `config`")
        unknown = set(item) - allowed
        if unknown:
            raise ConfigError(
                f"{path}: rows[{i}] has unknown key(s) {sorted(unknown)}; valid: {sorted(allowed)}"
            )
        config = path.parent / item["config"]
        if not config.is_file():
            raise ConfigError(f"{path}: rows[{i}].config: {config} does not exist")
        rows.append(Row(item["name"], config, int(item.get("seeds", 1)), item.get("init_from")))
    names = [r.name for r in rows]
    for row in rows:
        if row.init_from is not None:
            if row.init_from not in names or names.index(row.init_from) >= names.index(row.name):
                raise ConfigError(
                    f"{path}: row {row.name!r}: init_from {row.init_from!r} must name an earlier row"
                )
    return Study(
        rows=rows,
        out=Path(out or raw.get("out", "runs/study")),
        overrides=[str(o) for o in raw.get("overrides", [])],
        quick_overrides=[str(o) for o in raw.get("quick", [])],
        source=path,
        readme=Path(raw["readme"]) if raw.get("readme") else None,
    )


def _run_dir(study: Study, row: Row, seed: int) -> Path:
    return study.out / row.slug / f"seed{seed}"


def run_row(study: Study, row: Row, seed: int, quick: bool) -> dict:
    """Train (or resume, or skip) one row for one seed and return its final metrics."""
    from mrae.engine.checkpoint import load_model
    from mrae.engine.config import load_config
    from mrae.engine.train import TrainingDiverged, train

    run_dir = _run_dir(study, row, seed)
    done = run_dir / "final_metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    overrides = [*study.overrides, *(study.quick_overrides if quick else []), f"train.seed={seed}"]
    cfg = load_config(row.config, overrides)
    parent = _parent_run(study, row, seed)
    init_from = str(_run_dir(study, *parent) / "checkpoints" / "last.pth") if parent else None
    resume = (run_dir / "checkpoints" / "last.pth").is_file()
    started = time.perf_counter()
    try:
        metrics = train(cfg, run_dir, resume=resume, init_from=None if resume else init_from)
    except TrainingDiverged as error:
        # Reported as diverged, never rerun with other settings (the study's rule).
        record = {"diverged": str(error), "train_seconds": time.perf_counter() - started}
        done.write_text(json.dumps(record, indent=2) + "\n")
        print(f"{row.name}, seed {seed}: {error}", flush=True)
        return record
    metrics = dict(metrics)
    metrics["train_seconds"] = time.perf_counter() - started
    model, _, _ = load_model(run_dir / "checkpoints" / "last.pth")
    metrics.update(_complexity(model, cfg))
    if row.config.stem.startswith("mrae"):
        metrics["attention"] = _mean_attention(model, cfg)
    done.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _run_logged(study: Study, row: Row, seed: int, quick: bool, threads: int) -> dict:
    """`run_row` in a worker process: `threads` torch threads, output to the run's `study.log`."""
    import contextlib

    import torch

    torch.set_num_threads(threads)
    log = _run_dir(study, row, seed) / "study.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        return run_row(study, row, seed, quick)


def _parent_run(study: Study, row: Row, seed: int) -> tuple[Row, int] | None:
    """The (row, seed) whose final checkpoint this run continues, or None."""
    if row.init_from is None:
        return None
    parent = next(r for r in study.rows if r.name == row.init_from)
    return parent, seed if seed < parent.seeds else 0


def run_jobs(study: Study, jobs: list[tuple[Row, int]], quick: bool, workers: int = 1) -> None:
    """Run (row, seed) jobs, `workers` at a time, each worker with its share of the CPU threads.

    With one worker the runs go one after another in this process. With several, each run is a
    spawned process whose output goes to ``OUT/<row>/seed<k>/study.log``; a run that continues
    another row's run (``init_from``) starts once that run is done. On two CPU cores two one-thread
    runs train about 1.4x faster in total than one two-thread run after the other.
    """
    import concurrent.futures as futures
    import multiprocessing
    import os

    def finished(row: Row, seed: int) -> bool:
        return (_run_dir(study, row, seed) / "final_metrics.json").is_file()

    for row, seed in jobs:
        parent = _parent_run(study, row, seed)
        if parent and parent not in jobs and not finished(*parent):
            raise ConfigError(
                f"row {row.name!r} continues row {parent[0].name!r} (seed {parent[1]}), which has no "
                f"finished run in {study.out}; run that row too (--rows)"
            )
    todo = [job for job in jobs if not finished(*job)]
    if len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished in {study.out}", flush=True)
    jobs, total = todo, len(todo)
    if workers <= 1:
        for i, (row, seed) in enumerate(jobs, 1):
            print(f"[{i}/{total}] {row.name}, seed {seed}", flush=True)
            run_row(study, row, seed, quick)
        return
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    pending, running, count = list(jobs), {}, 0
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= workers:
                    break
                parent = _parent_run(study, *job)
                if parent is None or finished(*parent):
                    pending.remove(job)
                    count += 1
                    log = _run_dir(study, *job) / "study.log"
                    print(f"[{count}/{total}] {job[0].name}, seed {job[1]}: started (log: {log})", flush=True)
                    running[pool.submit(_run_logged, study, *job, quick, threads)] = (count, job)
            done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in done:
                index, (row, seed) = running.pop(future)
                metrics = future.result()  # a failed run stops the study; finished runs stay done
                result = ("diverged" if "diverged" in metrics
                          else f"AP {100 * metrics['AP']:.1f}, AP50 {100 * metrics['AP50']:.1f}")
                print(f"[{index}/{total}] {row.name}, seed {seed}: {result} "
                      f"({metrics['train_seconds'] / 60:.1f} min)", flush=True)


def measure_speed(study: Study, summary: list[dict], images: int = 20) -> None:
    """Inference ms/image of every row, one after another in this process (batch 1, val images).

    The runs' own ms/image were taken while other runs shared the cores; this measures each row's
    first finished model on the same images with the same threads, so the rows compare as ratios.
    Sets ``entry["ms_per_image"]``.
    """
    import torch

    from mrae.engine.checkpoint import load_model
    from mrae.engine.config import load_config

    for entry in summary:
        if not entry["seeds"]:
            continue
        row = next(r for r in study.rows if r.name == entry["name"])
        model, _, _ = load_model(_run_dir(study, row, entry["seeds"][0]) / "checkpoints" / "last.pth")
        model.eval()
        dataset = _val_dataset(load_config(row.config, study.overrides))
        count = min(images, len(dataset))
        batch = [dataset[i][0] for i in range(count)]
        seconds = []
        with torch.inference_mode():
            model([batch[0]])  # warm-up
            for image in batch:
                started = time.perf_counter()
                model([image])
                seconds.append(time.perf_counter() - started)
        entry["ms_per_image"] = 1000.0 * sum(seconds) / len(seconds)
        entry["ms_images"] = count


def _input_hw(cfg) -> tuple[int, int]:
    if cfg.model.get("fixed_size"):
        return int(cfg.model.fixed_size[0]), int(cfg.model.fixed_size[1])
    return int(cfg.model.min_size), int(cfg.model.max_size)


def _complexity(model, cfg) -> dict:
    """Parameters (millions) and GFLOPs of one inference at the config's input size (h x w)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    height, width = _input_hw(cfg)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model([torch.rand(3, height, width)])
    return {
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "GFLOPs": counter.get_total_flops() / 1e9,
    }


def _val_dataset(cfg):
    """The config's validation split, without augmentation."""
    from mrae.data.coco import CocoDetection
    from mrae.engine.config import resolve_data

    paths = resolve_data(cfg)
    return CocoDetection(paths["val_images"], paths["val_annotations"], train=False)


def _mean_attention(model, cfg, images: int = 50) -> list[float]:
    """The level weights of the final model averaged over the first validation images."""
    import torch

    from mrae.detector import attention_weights

    dataset = _val_dataset(cfg)
    totals = torch.zeros(3)
    count = min(images, len(dataset))
    with torch.inference_mode():
        for i in range(count):
            image, _ = dataset[i]
            model([image])
            weights = attention_weights(model)
            totals += weights.flatten(2).mean(-1)[0] if weights.dim() == 4 else weights[0]
    return (totals / max(count, 1)).tolist()


def _eval_curve(run_dir: Path, metric: str = "AP") -> list[tuple[int, float]]:
    """(step, metric) of every periodic evaluation logged in a run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    curve = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "eval" in record and record["eval"].get(metric) is not None:
            curve.append((int(record["step"]), float(record["eval"][metric])))
    return curve


def summarize(study: Study, seeds_override: int | None = None) -> list[dict]:
    """Mean and spread over seeds of every finished row, with its convergence curves."""
    import numpy as np

    summary = []
    for row in study.rows:
        seeds = min(row.seeds, seeds_override) if seeds_override else row.seeds
        runs, diverged = [], []
        for seed in range(seeds):
            done = _run_dir(study, row, seed) / "final_metrics.json"
            if done.is_file():
                record = json.loads(done.read_text())
                (diverged if "diverged" in record else runs).append((seed, record))
        if not runs and not diverged:
            continue
        keys = [k for k in runs[0][1] if isinstance(runs[0][1][k], int | float)] if runs else []
        mean = {k: float(np.nanmean([r[k] for _, r in runs])) for k in keys}
        std = {k: float(np.nanstd([r[k] for _, r in runs])) for k in keys}
        attention = [r["attention"] for _, r in runs if "attention" in r]
        parent = next((e for e in summary if e["name"] == row.init_from), None)
        offset = max((c[-1][0] for c in parent["curves"] if c), default=0) if parent else 0
        summary.append(
            {
                "name": row.name,
                "config": str(row.config),
                "seeds": [seed for seed, _ in runs],
                "mean": mean,
                "std": std,
                "runs": [r for _, r in runs],
                "curves": [_eval_curve(_run_dir(study, row, seed)) for seed, _ in runs],
                "attention": np.mean(attention, axis=0).tolist() if attention else None,
                "diverged": {seed: record["diverged"] for seed, record in diverged},
                "step_offset": offset,
            }
        )
    return summary


def _cell(entry: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    mean = entry["mean"].get(key)
    if mean is None or mean != mean:  # NaN: no ground truth in this bucket
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if len(entry["seeds"]) > 1:
        text += f" ± {entry['std'][key] * scale:.{digits}f}"
    return text


def markdown_table(summary: list[dict]) -> str:
    """The study table: Table 2's columns (x100), then ms/image, parameters and GFLOPs."""
    return _table(summary, METRIC_COLUMNS, model_size=True)


def _table(summary: list[dict], metric_columns: tuple[str, ...], model_size: bool) -> str:
    """A markdown table of `metric_columns` (x100) and ms/img per row; with `model_size`, also
    parameters and GFLOPs. A row whose every seed diverged says so in each cell."""
    sizes = ["params (M)", "GFLOPs"] if model_size else []
    header = ["row", "seeds", *metric_columns, "ms/img", *sizes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary:
        name = entry["name"]
        if entry.get("diverged"):
            name += f" ({len(entry['diverged'])} diverged)"
        if not entry["seeds"]:
            lines.append("| " + " | ".join([name, "0", *["diverged"] * (len(header) - 2)]) + " |")
            continue
        cells = [name, str(len(entry["seeds"]))]
        cells += [_cell(entry, key) for key in metric_columns]
        ms = entry.get("ms_per_image")
        cells.append(f"{ms:.0f}" if ms is not None else _cell(entry, "ms_per_image", 1.0, 0))
        if model_size:
            cells += [
                f"{entry['mean']['params_M']:.1f}",  # the same for every seed
                _cell(entry, "GFLOPs", 1.0, 1),  # varies a little: the box head runs on each proposal
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_convergence(summary: list[dict], path: Path) -> None:
    """AP on the validation split against training step, one line per row (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    palette = plt.get_cmap("tab20")
    for i, entry in enumerate(summary):
        curves = [c for c in entry["curves"] if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        # A run that continues another (the mixed row) is drawn after its parent's steps.
        steps = np.array([s for s, _ in curves[0][:length]]) + entry.get("step_offset", 0)
        values = np.array([[v for _, v in c[:length]] for c in curves]) * 100
        style = "-" if "MRAE" in entry["name"] else "--"
        colour = palette((2 * i) % 20 + (2 * i) // 20)  # 20 distinct colours, dark shades first
        (line,) = ax.plot(steps, values.mean(0), style, color=colour, label=entry["name"], marker=".")
        if len(curves) > 1:
            ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training step (the mixed run: after template 1's steps)")
    ax.set_ylabel("AP@[.5:.95] on val (%)")
    ax.set_title("Convergence (mean over seeds; band: min..max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_attention(summary: list[dict], path: Path) -> bool:
    """Bars of the mean level weight (C1, C2, C3) of every attention row; False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [e for e in summary if e["attention"] is not None]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(rows))
    for level in range(3):
        ax.bar(x + (level - 1) * 0.27, [e["attention"][level] for e in rows], 0.27, label=f"C{level + 1}")
    ax.axhline(1 / 3, color="grey", lw=0.8, ls=":", label="uniform (1/3)")
    ax.set_xticks(x, [e["name"] for e in rows], rotation=15, fontsize=8)
    ax.set_ylabel("mean attention weight on val images")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _find(summary: list[dict], name: str) -> dict | None:
    """The row called `name` if at least one of its runs finished without diverging."""
    return next((e for e in summary if e["name"] == name and e["seeds"]), None)


def _ms(entry: dict) -> float:
    """Inference ms/image: the quiet measurement after training where there is one."""
    return entry.get("ms_per_image") or entry["mean"]["ms_per_image"]


def _ap(entry: dict) -> float:
    return entry["mean"]["AP"] * 100


def _spread_note(a: dict, b: dict) -> str:
    gap = abs(_ap(a) - _ap(b))
    spread = (a["std"]["AP"] + b["std"]["AP"]) * 100
    if len(a["seeds"]) < 2 and len(b["seeds"]) < 2:
        return "one seed each, so the spread is unknown"
    return "beyond the seed spread" if gap > spread else "within the seed spread"


def _ap_at_fraction(entry: dict, fraction: float) -> float | None:
    """Mean AP (%) at the first evaluation at or after `fraction` of the run's steps."""
    values = []
    for curve in entry["curves"]:
        if not curve:
            continue
        target = fraction * curve[-1][0]
        values.append(next(v for s, v in curve if s >= target) * 100)
    return sum(values) / len(values) if values else None


# Two APs closer than this (AP points, x100), or than their seeds' spread, count as a tie: the
# table shows one decimal.
TIE_AP = 0.1


def _order(a: dict, b: dict) -> int:
    """1 if row a's AP is above b's beyond the tie margin, -1 if below, 0 for a tie."""
    margin = max(TIE_AP, (a["std"]["AP"] + b["std"]["AP"]) * 100)
    gap = _ap(a) - _ap(b)
    return 0 if abs(gap) <= margin else (1 if gap > 0 else -1)


def discuss(summary: list[dict]) -> list[str]:
    """One plain sentence per claim of the paper, each computed from the measured table.

    A verdict is "held" only where the difference is beyond the tie margin (TIE_AP or the seed
    spread); ties and rows that did not learn are said to be ties, not counted for or against.
    """
    lines: list[str] = []
    singles = [e for e in (_find(summary, f"single C{k}") for k in (1, 2, 3)) if e]
    t2 = _find(summary, "MRAE template 2")
    if singles and t2:
        best = max(singles, key=_ap)
        order = _order(t2, best)
        ratio = f"{_ap(t2) / _ap(best):.2f}x" if _ap(best) > 0 else "undefined (baseline at 0)"
        if order <= 0:
            verdict = "did not hold (a tie)" if order == 0 else "did not hold"
        else:
            verdict = "held" if _ap(best) > 0 and _ap(t2) >= 2 * _ap(best) else "partly held"
        lines.append(
            f"**MRAE doubles the AP of the single-level baselines** (paper: 5.0 vs 2.6, 1.9x): "
            f"{verdict}. MRAE template 2 reaches {_ap(t2):.1f} AP against {_ap(best):.1f} for the best "
            f"single level ({best['name']}), a ratio of {ratio}, {_spread_note(t2, best)}."
        )
        half_t2, half_best = _ap_at_fraction(t2, 0.5), _ap_at_fraction(best, 0.5)
        if half_t2 is not None and half_best is not None:
            gap = half_t2 - half_best
            verdict = "held" if gap > TIE_AP else ("a tie" if gap >= -TIE_AP else "did not hold")
            lines.append(
                f"**MRAE converges faster**: {verdict}. Halfway through the schedule MRAE template 2 "
                f"has {half_t2:.1f} AP and {best['name']} {half_best:.1f} (see the convergence plot)."
            )
    templates = [e for e in (_find(summary, f"MRAE template {t}") for t in (1, 2, 3)) if e]
    if len(templates) == 3:
        others = [e for e in templates if e is not t2]
        orders = [_order(t2, e) for e in others]
        verdict = ("held" if all(o > 0 for o in orders)
                   else "did not hold" if any(o < 0 for o in orders) else "not shown (a tie)")
        values = ", ".join(f"{e['name'][-1]}: {_ap(e):.1f}" for e in templates)
        lines.append(
            f"**Template 2 is the best template** (paper: 3.6 / 5.0 / 3.6): {verdict}; AP by template "
            f"{values}."
        )
    soft = _find(summary, "soft")
    if soft and singles:
        mean_single = sum(_ap(e) for e in singles) / len(singles)
        if mean_single <= TIE_AP:
            verdict = "cannot be judged (the single levels did not learn either)"
        else:
            verdict = "held" if _ap(soft) < 0.25 * mean_single else "did not hold"
        lines.append(
            f"**Soft attention barely learns** (paper: 0.04 AP): {verdict}; soft reaches "
            f"{_ap(soft):.1f} AP against {mean_single:.1f} for the mean single level."
        )
    mixed = _find(summary, "MRAE template 1 -> 2 (mixed)")
    t1 = _find(summary, "MRAE template 1")
    if mixed and t2 and t1:
        order = _order(mixed, t2)
        verdict = "held" if order < 0 else ("did not hold (a tie)" if order == 0 else "did not hold")
        lines.append(
            f"**Switching templates mid-training hurts** (paper: 3.5 mixed vs 5.0 template 2): "
            f"{verdict}; mixed {_ap(mixed):.1f}, template 1 {_ap(t1):.1f}, template 2 {_ap(t2):.1f} AP "
            f"(the mixed run trains longer: template 1's budget, then its own continuation)."
        )
    fpn = _find(summary, "FPN")
    if fpn and t2:
        faster = "faster" if _ms(t2) < _ms(fpn) else "slower"
        lines.append(
            f"**Against FPN** (not in the paper's tables): FPN reaches {_ap(fpn):.1f} AP and MRAE "
            f"template 2 {_ap(t2):.1f}, {_spread_note(t2, fpn)}; MRAE is {faster} here "
            f"({_ms(t2):.0f} vs {_ms(fpn):.0f} ms/image)."
        )
    looks = []
    for entry in summary:
        match = re.search(r"template (\d)(?: -> (\d))?", entry["name"])
        if entry.get("attention") and match:
            template = int(match.group(2) or match.group(1))
            weights = entry["attention"]
            top = max(range(3), key=weights.__getitem__) + 1
            shown = "/".join(f"{w:.2f}" for w in weights)
            looks.append((entry["name"], template, top, shown))
    if looks:
        on_template = sum(template == top for _, template, top, _ in looks)
        lines.append(
            f"**Where MRAE looks**: in {on_template} of {len(looks)} MRAE rows the template's own "
            "level gets the largest mean weight (its cosine with itself is 1, so at cosines near 0 "
            "it gets e/(e+2) = 0.58); mean C1/C2/C3 weights: "
            + "; ".join(f"{name} {shown}" for name, _, _, shown in looks) + "."
        )
    for entry in summary:
        for seed, message in entry.get("diverged", {}).items():
            lines.append(f"**{entry['name']}, seed {seed} diverged** and is reported as such: {message}")
    return lines


README_BEGIN = "<!-- mrae study: headline table begin -->"
README_END = "<!-- mrae study: headline table end -->"
HEADLINE_COLUMNS = ("AP", "AP50", "APs", "AR100")


def headline_table(summary: list[dict]) -> str:
    """The README's short table: AP, AP50, APs, AR100 (x100) and ms/img of every row."""
    return _table(summary, HEADLINE_COLUMNS, model_size=False)


def update_readme(readme: Path, summary: list[dict], report: Path, command: str) -> bool:
    """Replace the README's block between the headline markers; False where there is none."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        return False
    try:
        link = report.resolve().relative_to(readme.resolve().parent)
    except ValueError:
        link = report
    block = (
        f"{README_BEGIN}\n"
        f"Written by `{command}` ({time.strftime('%Y-%m-%d', time.gmtime())}); the full table, the "
        f"plots, the budget and the discussion are in [{link}]({link}).\n\n"
        f"{headline_table(summary)}\n\n"
        + "".join(f"- {line}\n" for line in discuss(summary))
    )
    readme.write_text(text[:begin] + block + text[end:])
    return True


def _commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")


def _budget(study: Study, quick: bool) -> str:
    from mrae.engine.config import load_config

    overrides = [*study.overrides, *(study.quick_overrides if quick else [])]
    cfg = load_config(study.rows[0].config, overrides)
    t, d, m = cfg.train, cfg.data, cfg.model
    return (
        f"{t.steps} steps of batch {t.batch_size}, about "
        f"{t.steps * t.batch_size / d.synthetic.train_images:.2f} epochs "
        f"(SGD, lr {t.lr}, momentum {t.momentum}, "
        f"milestones {list(t.milestones)}, warm-up {t.warmup_steps}), backbone {m.backbone} "
        f"(pretrained: {m.pretrained}), head {m.head}, out_channels {m.out_channels}, input "
        f"min/max side {m.min_size}/{m.max_size}; synthetic data: {d.synthetic.train_images} train and "
        f"{d.synthetic.val_images} val images (seed {d.synthetic.seed})"
    )


def write_report(
    study: Study, summary: list[dict], report: Path, command: str, quick: bool, commit: str | None = None
) -> None:
    """The results page: table, plots, command, commit, budget and the discussion."""
    import platform

    import torch

    report.parent.mkdir(parents=True, exist_ok=True)
    convergence = report.with_name(report.stem + "_convergence.png")
    attention = report.with_name(report.stem + "_attention.png")
    plot_convergence(summary, convergence)
    has_attention = plot_attention(summary, attention)
    minutes = [r["train_seconds"] / 60 for e in summary for r in e["runs"]]
    lines = [
        "# Reproducing the paper's Tables 2 and 3 on the synthetic small-object benchmark",
        "",
        "Generated by `mrae study`; no number on this page was written by hand.",
        "",
        f"- command: `{command}`",
        f"- commit: `{commit or _commit()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU'}",
        f"- budget, identical for every row: {_budget(study, quick)}",
        f"- training time per run (wall, including its evaluations; with `--jobs N`, N runs share "
        f"the cores): {min(minutes, default=float('nan')):.1f} to "
        f"{max(minutes, default=float('nan')):.1f} minutes",
        "",
        "AP and AR are COCO's (pycocotools), x100, on the synthetic val split; mean ± standard "
        "deviation over seeds where a row has several. ms/img: inference of each row's first "
        f"model, batch 1, on the first {max(e.get('ms_images', 0) for e in summary)} val images, "
        "measured one row after another in one process after training; GFLOPs of one image at the "
        "input size above.",
        "",
        "Read it as a comparison at a fixed, small budget: every row starts from a randomly "
        "initialised ResNet-18 and sees the epochs above, where the paper fine-tuned an "
        "ImageNet-initialised ResNet-101 for about 1M steps. Absolute APs are therefore far below the "
        "paper's; what the table can show is which extractor learns the most in the same budget.",
        "",
        markdown_table(summary),
        "",
        "## What held and what did not",
        "",
        *[f"- {line}" for line in discuss(summary)],
        "",
        "## Convergence",
        "",
        f"![AP against training step]({convergence.name})",
        "",
    ]
    if has_attention:
        lines += ["## Where MRAE looks", "", f"![mean level weights]({attention.name})", ""]
    report.write_text("\n".join(lines))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study file, e.g. configs/synth/study.yaml")
    parser.add_argument("--out", help="folder of the runs (default: the study file's `out`)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, the study file's `quick` overrides (tiny data, few steps)")
    parser.add_argument("--report", help="results page to write (default: docs/results.md; "
                        "with --quick: OUT/results.md)")
    parser.add_argument("--rows", nargs="+", metavar="NAME", help="run only these rows")
    parser.add_argument("--report-only", action="store_true", help="only summarize finished runs")
    parser.add_argument("--readme",
                        help="also write the headline table between this file's study markers "
                        "(default: the study file's `readme`, if any; never with --quick)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runs trained at once, each with 1/N of the CPU threads (default 1; "
                        "2 on a 2-core machine trains the study about 1.4x faster)")


def main(args: argparse.Namespace) -> int:
    study = load_study(args.study, args.out)
    commit = _commit()  # before the study writes its report and plots over tracked files
    seeds = 1 if args.quick else None
    selected = [r for r in study.rows if not args.rows or r.name in args.rows]
    if args.rows and len(selected) != len(args.rows):
        valid = ", ".join(r.name for r in study.rows)
        raise ConfigError(f"--rows: unknown row name(s); valid: {valid}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    if not args.report_only:
        jobs = [(row, seed) for row in selected for seed in range(seeds or row.seeds)]
        run_jobs(study, jobs, args.quick, args.jobs)
    summary = summarize(study, seeds)
    if not summary:
        raise ConfigError(f"{study.out}: no finished run to report; run the study first")
    print("measuring inference time of every row, one after another ...", flush=True)
    measure_speed(study, summary, images=2 if args.quick else 20)
    study.out.mkdir(parents=True, exist_ok=True)
    (study.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = Path(args.report or (study.out / "results.md" if args.quick else "docs/results.md"))
    command = " ".join(
        ["mrae study", shlex.quote(args.study)]
        + (["--quick"] if args.quick else [])
        + ([f"--out {shlex.quote(args.out)}"] if args.out else [])
        + (["--rows", *map(shlex.quote, args.rows)] if args.rows else [])
        + ([f"--jobs {args.jobs}"] if args.jobs > 1 else [])
    )
    write_report(study, summary, report, command, args.quick, commit)
    readme = Path(args.readme) if args.readme else study.readme
    if readme and not args.quick and update_readme(readme, summary, report, command):
        print(f"headline table written into {readme}")
    print(markdown_table(summary))
    print(f"\nresults page: {report}")
    return 0
