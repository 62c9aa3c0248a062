"""Inference speed of every extractor x box head on the CPU at 512x300, beside torchvision's own
fasterrcnn_resnet50_fpn, in one run; prints a markdown table and writes it to docs/speed.md.

    python benchmarks/speed.py --repeats 3 --warmup 1 --backbones resnet18,resnet50

Random weights (nothing is downloaded); every model gets the same proposal and detection settings,
and the RPN's NMS is set to IoU 1.0 so that every model's box head sees the same number of
proposals (random weights would otherwise let NMS leave a handful, a different handful per model).
GFLOPs come from torch.utils.flop_counter.FlopCounterMode (convolutions and matmuls; RoIAlign and
NMS are not counted), for one 512x300 image.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from mrae.modeling.detector import build_detector

EXTRACTOR_ROWS = [
    ("single 1", dict(extractor="single", level=1)),
    ("single 2", dict(extractor="single", level=2)),
    ("single 3", dict(extractor="single", level=3)),
    ("soft", dict(extractor="soft")),
    ("mrae global t2", dict(extractor="mrae", template=2, mode="global")),
    ("mrae spatial t2", dict(extractor="mrae", template=2, mode="spatial")),
    ("concat", dict(extractor="concat")),
    ("sum", dict(extractor="sum")),
    ("fpn", dict(extractor="fpn")),
]


def measure(model: torch.nn.Module, image: torch.Tensor, warmup: int, repeats: int) -> dict:
    model.eval()
    proposals = []
    hook = model.rpn.register_forward_hook(lambda _m, _i, out: proposals.append(len(out[0][0])))
    with torch.no_grad():
        for _ in range(warmup):
            model([image])
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = model([image])
            times.append((time.perf_counter() - start) * 1000)
        with FlopCounterMode(display=False) as counter:
            model([image])
    hook.remove()
    return {
        "proposals": proposals[-1],
        "ms": statistics.median(times),
        "params": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": counter.get_total_flops() / 1e9,
        "detections": len(out[0]["boxes"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per model first")
    parser.add_argument("--backbones", default="resnet18,resnet50", help="comma-separated depths")
    parser.add_argument("--heads", default="mlp,c4", help="comma-separated box heads")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--proposals", type=int, default=1000, help="RPN proposals kept at test time")
    parser.add_argument("--out", type=Path, default=Path("docs/speed.md"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = torch.rand(3, 300, 512)
    common = dict(
        min_size=300,
        max_size=512,
        rpn_pre_nms_top_n_test=args.proposals,
        rpn_post_nms_top_n_test=args.proposals,
        # Random weights make near-identical RPN boxes that NMS would collapse to a handful, and
        # the box head's cost follows the proposal count: NMS at IoU 1.0 keeps exactly
        # `proposals` per image for every model, like a trained RPN does.
        rpn_nms_thresh=1.0,
        box_score_thresh=0.05,
        box_nms_thresh=0.5,
    )
    rows = []
    for backbone in args.backbones.split(","):
        for head in args.heads.split(","):
            for name, kwargs in EXTRACTOR_ROWS:
                model = build_detector(backbone=backbone, head=head, out_channels=256, num_classes=2,
                                       **kwargs, **common)
                result = measure(model, image, args.warmup, args.repeats)
                rows.append((backbone, name, head, result))
                print(f"{backbone} {name} {head}: {result['ms']:.0f} ms", file=sys.stderr, flush=True)
    reference = fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, box_detections_per_img=300, **common
    )
    rows.append(("resnet50", "torchvision fasterrcnn_resnet50_fpn", "mlp",
                 measure(reference, image, args.warmup, args.repeats)))

    lines = [
        "| backbone | extractor | head | ms/image | params (M) | GFLOPs | proposals | detections |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backbone, name, head, r in rows:
        lines.append(f"| {backbone} | {name} | {head} | {r['ms']:.0f} | {r['params']:.1f} "
                     f"| {r['gflops']:.1f} | {r['proposals']} | {r['detections']} |")
    ratios = []
    by_key = {(b, n, h): r for b, n, h, r in rows}
    for backbone in args.backbones.split(","):
        for head in args.heads.split(","):
            mrae_r = by_key.get((backbone, "mrae global t2", head))
            fpn_r = by_key.get((backbone, "fpn", head))
            if mrae_r and fpn_r:
                ratios.append(f"- {backbone}, {head} head: mrae(global, 256) / fpn time = "
                              f"{mrae_r['ms'] / fpn_r['ms']:.2f} (GFLOPs {mrae_r['gflops'] / fpn_r['gflops']:.2f})")
    table = "\n".join(lines + ["", *ratios])
    print(table)

    command = shlex.join(["python", "benchmarks/speed.py", *(argv if argv is not None else sys.argv[1:])])
    machine = (f"{platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} torch "
               f"threads, torch {torch.__version__}, {platform.system()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Inference speed (CPU, 512x300)\n\n"
        f"Command: `{command.strip()}`  \nDate: {datetime.date.today().isoformat()}  \n"
        f"Machine: {machine}  \n"
        f"Settings: batch 1, random weights, {args.proposals} RPN proposals at test time (RPN NMS "
        "at IoU 1.0 so every model gets them all), score threshold 0.05, NMS 0.5, median of the timed runs. GFLOPs: FlopCounterMode (conv/matmul "
        "only). Timings on a shared machine are noisy: compare rows of one run.\n\n"
        f"{table}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
