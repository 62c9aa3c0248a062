"""The training recipe's ablation: each lever of the demo's config measured at equal wall-clock time.

    python benchmarks/recipe.py                      # every variant, two at a time (the study's way)
    python benchmarks/recipe.py --only scratch,recipe --minutes 15
    python benchmarks/recipe.py --render-only        # rewrite docs/training_recipe.md from its JSON

Every variant is ``mrae train --config configs/synth/demo.yaml`` with a few overrides (the
variant's lever; nothing else differs). Equal wall-clock time: the variant's training step is
timed first (:func:`benchmarks.train_speed.measure`, same threads), its number of steps set so
that training lasts ``--minutes``, with the lr drops at 70% and 90% of those steps and 3
evaluations (at a third, two thirds and the end) on the demo's 100 val images; AP50 at 5, 10 and 15 minutes is read from the run's
``metrics.jsonl``: the last evaluation whose training time (``train_seconds``, which leaves out
evaluations and checkpoints) is within the mark (+5%). Runs go ``--jobs`` at a time with
``1/jobs`` of the threads each, as ``mrae study --jobs 2`` trains its rows. The results go to
``docs/training_recipe.json``; ``docs/training_recipe.md`` is rendered from it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/synth/demo.yaml"
OUT = REPO / "docs" / "training_recipe.json"
PAGE = REPO / "docs" / "training_recipe.md"
RUNS = Path("runs/recipe")
MARKS = (5, 10, 15)  # minutes

# The configuration the table was measured around: the demo config with 256x256 training crops
# (what it held then). Every variant is BASE plus its own overrides (the later override wins), so
# the commands below reproduce the table whatever the demo config holds now.
BASE = ["data.train_crop=[256,256]"]

# name -> (what it changes, overrides on top of BASE). "recipe" is BASE itself; every other
# variant changes one lever of it (or, "scratch", the old start).
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "recipe": ("the measured base: pretrained trunk, 256x256 crops, lr 0.02, batch 2", []),
    "scratch": ("no pretraining: ResNet-18 from random weights, learned batch norm",
                ["model.pretrained=null"]),
    "scratch-groupnorm": ("no pretraining, GroupNorm (32 groups) instead of batch norm",
                          ["model.pretrained=null", "model.norm=groupnorm"]),
    "full-images": ("no crops: whole 512x300 images", ["data.train_crop=null"]),
    "lr-half": ("half the learning rate (0.01)", ["train.lr=0.01"]),
    "lr-double": ("twice the learning rate (0.04)", ["train.lr=0.04"]),
    "batch-4": ("batch 4, lr 0.04 (linear scaling)", ["train.batch_size=4", "train.lr=0.04"]),
    "samples-half": ("half the RPN and RoI samples per image (128 / 128)",
                     ["model.rpn_batch_size_per_image=128", "model.box_batch_size_per_image=128"]),
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"variants": {}}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def calibrate(overrides: list[str], threads: int) -> float:
    """Seconds per training step of the demo config with ``overrides`` (median of 4 steps, the
    model the demo trains, measured by benchmarks/train_speed.py on ``threads`` threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "speed.json"
        subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "train_speed.py"), "--config", CONFIG,
             "--only", "MRAE t2", "--steps", "4", "--warmup", "1", "--out", str(Path(tmp) / "speed.md"),
             "--json", str(result), *overrides],
            cwd=REPO, capture_output=True, text=True, check=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
        return float(json.loads(result.read_text())["MRAE t2"]["step"])


def run_variant(name: str, minutes: float, threads: int) -> dict:
    what, own = VARIANTS[name]
    overrides = [*BASE, *own]
    step_seconds = calibrate(overrides, threads)
    steps = max(30, int(minutes * 60 / step_seconds))
    schedule = [f"train.steps={steps}", f"train.milestones=[{int(0.7 * steps)},{int(0.9 * steps)}]",
                f"train.warmup_steps={min(30, steps // 10)}", f"train.eval_every={max(1, steps // 3)}",
                f"train.checkpoint_every={max(1, steps // 3)}"]
    run_dir = RUNS / name
    args = ["mrae", "train", "--config", CONFIG, "--out", str(run_dir), *overrides, *schedule]
    resume = (REPO / run_dir / "checkpoints" / "last.pth").is_file()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    log = (REPO / RUNS).joinpath(f"{name}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        subprocess.run([sys.executable, "-m", "mrae.cli", *args[1:], *(["--resume"] if resume else [])],
                       cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    evals = [json.loads(line) for line in (REPO / run_dir / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    at = {}
    for mark in MARKS:
        within = [e for e in evals if e.get("train_seconds", 1e9) <= mark * 60 * 1.1]
        at[str(mark)] = (within[-1]["eval"]["AP50"], within[-1]["train_seconds"]) if within else None
    final = evals[-1]
    return {
        "what": what, "overrides": overrides, "step_seconds": step_seconds, "steps": steps,
        "command": shlex.join([*args]), "AP50_at": at, "final": final["eval"],
        "train_seconds": final.get("train_seconds"), "wall_seconds": round(wall, 1),
    }


def render(results: dict) -> str:
    lines = [
        "# The training recipe: every lever at equal wall-clock time",
        "",
        "Written by `python benchmarks/recipe.py` (the variants may come from several calls, each "
        f"merged into the JSON; the latest: `{results['command']}`, {results['date']}, "
        f"{results['machine']}); rendered from [training_recipe.json](training_recipe.json). No "
        "number here is typed by hand.",
        "",
        f"Each line trains `{CONFIG}` with its overrides for {results['minutes']:g} minutes of training "
        f"time ({results['jobs']} runs at a time, {results['threads']} thread(s) each, as `mrae study "
        "--jobs 2` trains its rows), its steps set from its own measured step time, the lr dropped "
        "x0.1 at 70% and 90% of them, evaluated at a third, two thirds and the end. AP50 (COCO, x100) "
        "on the first 100 synthetic val images at the last evaluation within 5, 10 and 15 minutes "
        "of training (+10%; in brackets the training minutes it had; evaluations not counted). "
        "The proxy pretraining (`mrae pretrain`, "
        f"{results.get('pretrain_minutes', float('nan')):.1f} minutes on 2 cores, once, cached and "
        "shared by every row) is not in the minutes: compare a pretrained row at 5 minutes with "
        "`scratch` at 10.",
        "",
        "| variant | what changes | s/step | steps | AP50 @5 min | @10 min | @15 min | final AP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["variants"].items():
        what = VARIANTS[name][0] if name in VARIANTS else r["what"]
        cells = []
        for mark in MARKS:
            value = r["AP50_at"].get(str(mark))
            cells.append("–" if value is None else f"{100 * value[0]:.1f} ({value[1] / 60:.1f})")
        lines.append(f"| {name} | {what} | {r['step_seconds']:.2f} | {r['steps']} | "
                     + " | ".join(cells) + f" | {100 * r['final']['AP']:.1f} |")
    missing = [n for n in VARIANTS if n not in results["variants"]]
    if missing:
        lines += ["", "Not measured yet: " + ", ".join(f"`{n}` ({VARIANTS[n][0]})" for n in missing)
                  + f"; `python benchmarks/recipe.py --only {','.join(missing)}` adds them."]
    best = max(results["variants"], key=lambda n: _final_ap50(results["variants"][n]))
    lines += ["", f"Best AP50 at the last mark: **{best}**. The recipe (configs/synth/_base.yaml) keeps what wins, "
              "for every row alike.", ""]
    lines += ["Commands (each line above; the base's crops are pinned so that they reproduce it):", ""]
    lines += [f"- {name}: `{_command(name, r)}`" for name, r in results["variants"].items()]
    lines.append("")
    return "\n".join(lines)


def _final_ap50(r: dict) -> float:
    value = r["AP50_at"].get(str(MARKS[-1]))
    return value[0] if value else -1.0


def _command(name: str, r: dict) -> str:
    """The variant's training command: BASE, its overrides, and the schedule it was run with."""
    keys = ("train.steps=", "train.milestones=", "train.warmup_steps=", "train.eval_every=",
            "train.checkpoint_every=")
    schedule = [a for a in shlex.split(r["command"]) if a.startswith(keys)]
    own = VARIANTS[name][1] if name in VARIANTS else r["overrides"]
    return shlex.join(["mrae", "train", "--config", CONFIG, "--out", str(RUNS / name), *BASE, *own,
                       *schedule])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated variants (default: all): " + ", ".join(VARIANTS))
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    os.chdir(REPO)  # the configs' cache folders are relative to the repository
    results = _load(OUT)
    if not args.render_only:
        names = args.only.split(",") if args.only else list(VARIANTS)
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        from mrae.engine.config import load_config
        from mrae.engine.pretrain import cache_path, report_file, resolve_pretrained

        cfg = load_config(REPO / CONFIG)
        resolve_pretrained(cfg)  # once, before the variants start (they share the trunk)
        report = json.loads(report_file(cache_path(cfg)).read_text())
        results["pretrain_minutes"] = round(sum(report["seconds"].values()) / 60, 2)
        results.update({
            "command": shlex.join(["python", "benchmarks/recipe.py", *sys.argv[1:]]),
            "date": datetime.date.today().isoformat(), "minutes": args.minutes, "jobs": args.jobs,
            "threads": threads,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start",
        })
        with futures.ThreadPoolExecutor(args.jobs) as pool:
            jobs = {pool.submit(run_variant, n, args.minutes, threads): n for n in names}
            for job in futures.as_completed(jobs):
                results["variants"][jobs[job]] = job.result()
                results["variants"] = {n: results["variants"][n] for n in VARIANTS if n in results["variants"]}
                _write_atomic(OUT, json.dumps(results, indent=2) + "\n")
                print(f"{jobs[job]}: done", file=sys.stderr, flush=True)
    _write_atomic(PAGE, render(results))
    print(PAGE.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
