"""Where a training step's time goes, per extractor, beside this CPU's own matmul peak.

    python benchmarks/train_speed.py                       # the demo's config, every extractor
    python benchmarks/train_speed.py --steps 5 data.train_crop=[256,256] --out docs/train_speed_crop.md

One training step of the config (batch ``train.batch_size`` of the synthetic training images) is
split into: data (reading, decoding and augmenting the batch, in the training process: the
run itself overlaps it with ``data.workers`` loader processes), transform (normalise, resize,
pad), backbone (ResNet C1..C3), extractor, RPN (head, anchors, proposals, its losses), RoI head
(sampling, RoIAlign, box head, its losses), backward and the optimizer step. Forward phases are
timed with module hooks, every phase as the median over ``--steps`` steps after ``--warmup``.

GFLOP/s: the FLOPs of one forward+backward (torch.utils.flop_counter; convolutions and matmuls,
not RoIAlign or NMS) over its measured time, beside the peak this machine reaches on a
2048x2048 float32 matmul with the same threads: how far from the machine's limit training runs.
Weights are the config's start (the pretrained trunk when the config asks for it); timings do
not depend on them except through the number of proposals that survive NMS.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mrae.data.augment import AugmentByKey
from mrae.data.coco import CocoDetection, collate
from mrae.engine.config import load_config, resolve_data, to_dict
from mrae.engine.pretrain import resolve_pretrained
from mrae.engine.sampler import ResumableSampler
from mrae.modeling.detector import build_detector
from mrae.tables import markdown_table

EXTRACTOR_ROWS = [
    ("single C1", {"extractor": "single", "level": 1}),
    ("single C2", {"extractor": "single", "level": 2}),
    ("single C3", {"extractor": "single", "level": 3}),
    ("soft", {"extractor": "soft"}),
    ("MRAE t2", {"extractor": "mrae", "template": 2, "mode": "global"}),
    ("MRAE spatial t2", {"extractor": "mrae", "template": 2, "mode": "spatial"}),
    ("concat", {"extractor": "concat"}),
    ("sum", {"extractor": "sum"}),
    ("FPN", {"extractor": "fpn"}),
    ("FPN all anchors", {"extractor": "fpn", "fpn_anchors": "all"}),
]
PHASES = ("data", "transform", "backbone", "extractor", "rpn", "roi_heads", "backward", "optimizer")
REPO = Path(__file__).resolve().parents[1]


def matmul_peak(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n x n float32 matmul on ``threads`` threads (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class PhaseTimer:
    """Forward-hook timers on the detector's parts; ``times[name]`` is the last forward's seconds."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.times: dict[str, float] = {}
        self._start: dict[str, float] = {}
        parts = {"transform": model.transform, "backbone": model.backbone.body,
                 "extractor": model.backbone.extractor, "rpn": model.rpn, "roi_heads": model.roi_heads}
        for name, module in parts.items():
            module.register_forward_pre_hook(self._pre(name))
            module.register_forward_hook(self._post(name))

    def _pre(self, name):
        def hook(*_):
            self._start[name] = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(*_):
            self.times[name] = time.perf_counter() - self._start[name]
        return hook


VARIANTS = ("eager", "channels_last", "compile", "flush_denormal")


def prepare(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """The model as the variant runs it: as built (eager), its convolution weights in channels_last
    memory format (inputs follow: the ResNet stem converts them), its backbone (trunk + extractor)
    through torch.compile (the RPN and RoI head stay eager: their shapes change with every batch's
    proposals), or as built with denormal floats flushed to zero (flush_denormal)."""
    if variant == "channels_last":
        model.backbone.to(memory_format=torch.channels_last)
        model.rpn.to(memory_format=torch.channels_last)
    elif variant == "flush_denormal":
        pass  # set around the measurement: torch.set_flush_denormal is process-wide
    elif variant == "compile":
        model.backbone.body = torch.compile(model.backbone.body, dynamic=True)
        model.backbone.extractor = torch.compile(model.backbone.extractor, dynamic=True)
    elif variant != "eager":
        raise SystemExit(f"--variant {variant!r}: choose from {', '.join(VARIANTS)}")
    return model


def measure(cfg, model_kwargs: dict, dataset, steps: int, warmup: int, variant: str = "eager") -> dict:
    t, m = cfg.train, cfg.model
    kwargs = {**to_dict(m), **model_kwargs, "num_classes": dataset.num_classes + 1}
    kwargs["pretrained"] = resolve_pretrained(cfg, progress=False)
    torch.manual_seed(0)
    model = prepare(build_detector(**kwargs), variant)
    model.train()
    torch.set_flush_denormal(variant == "flush_denormal")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=t.weight_decay)
    view = AugmentByKey(dataset, crop=cfg.data.train_crop, min_size=m.min_size, max_size=m.max_size)
    keys = iter(ResumableSampler(len(dataset), seed=0, crop=cfg.data.train_crop is not None))
    timer = PhaseTimer(model)
    rows = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        images, targets = collate([view[next(keys)] for _ in range(t.batch_size)])
        data = time.perf_counter() - start
        start = time.perf_counter()
        loss = sum(model(images, targets).values())
        forward = time.perf_counter() - start
        backward = _timed(loss.backward)
        optimizer_time = _timed(optimizer.step)
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            rows.append({"data": data, **timer.times, "backward": backward,
                         "optimizer": optimizer_time, "forward": forward})
    with FlopCounterMode(display=False) as counter:
        images, targets = collate([view[next(keys)] for _ in range(t.batch_size)])
        sum(model(images, targets).values()).backward()
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    step_time = median["data"] + median["forward"] + median["backward"] + median["optimizer"]
    return {
        **median,
        "step": step_time,
        "images_per_s": t.batch_size / step_time,
        "gflops": counter.get_total_flops() / 1e9,
        "gflop_per_s": counter.get_total_flops() / 1e9 / (median["forward"] + median["backward"]),
    }


def table(results: list[tuple[str, dict]], peak: float) -> str:
    head = ["extractor", *(f"{p} ms" for p in PHASES), "step ms", "img/s", "GFLOP/step",
            "GFLOP/s", "% of peak"]
    rows = [[name, *(f"{1000 * r[p]:.0f}" for p in PHASES), f"{1000 * r['step']:.0f}",
             f"{r['images_per_s']:.2f}", f"{r['gflops']:.0f}", f"{r['gflop_per_s']:.0f}",
             f"{100 * r['gflop_per_s'] / peak:.0f}"] for name, r in results]
    return markdown_table(head, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs/synth/demo.yaml"))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per extractor")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", help="comma-separated extractor rows, e.g. 'MRAE t2,FPN'")
    parser.add_argument("--out", default=str(REPO / "docs/train_speed.md"))
    parser.add_argument("--json", help="also write the measurements as JSON here")
    parser.add_argument("--variants", default="eager",
                        help=f"comma-separated ways to run the model, each row once per variant: "
                             f"{', '.join(VARIANTS)} (see prepare())")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("overrides", nargs="*", default=[])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    for variant in variants:
        if variant not in VARIANTS:
            parser.error(f"--variants: unknown {variant!r}; choose from {', '.join(VARIANTS)}")
    cfg = load_config(args.config, args.overrides)
    paths = resolve_data(cfg)
    dataset = CocoDetection(paths["train_images"], paths["train_annotations"], train=True)
    threads = torch.get_num_threads()
    peak = matmul_peak(threads)
    rows = [r for r in EXTRACTOR_ROWS if not args.only or r[0] in args.only.split(",")]
    results = []
    for name, kwargs in rows:
        for variant in variants:
            label = name if len(variants) == 1 else f"{name} ({variant})"
            results.append((label, measure(cfg, kwargs, dataset, args.steps, args.warmup, variant)))
            print(f"{label}: {1000 * results[-1][1]['step']:.0f} ms/step", file=sys.stderr, flush=True)
    command = shlex.join(["python", "benchmarks/train_speed.py", *sys.argv[1:]])
    load = os.getloadavg()
    text = "\n".join([
        "# Where a training step's time goes",
        "",
        f"Written by `{command.strip()}` on {datetime.date.today()} ({platform.processor() or platform.machine()},"
        f" {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads; load average before"
        f" the run's end {load[0]:.2f}). Config: `{Path(args.config).name}`"
        + (f" with {' '.join(args.overrides)}" if args.overrides else "") + f", batch {cfg.train.batch_size}"
        f", median of {args.steps} steps after {args.warmup}.",
        "",
        f"This machine's float32 matmul peak (2048x2048, {threads} threads): **{peak:.0f} GFLOP/s**.",
        "",
        table(results, peak),
        "",
        "data: reading and augmenting the batch in the training process (training overlaps it "
        "with `data.workers` loader processes). GFLOP/s: convolution and matmul FLOPs of forward + "
        "backward over their time.",
        "",
    ])
    print(text)
    Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_gflop_per_s": peak, **dict(results)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
