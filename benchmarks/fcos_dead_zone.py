"""FCOS's box coding and its dead zone: does the box regression come back when its outputs start
below zero?

    python benchmarks/fcos_dead_zone.py                   # the table
    python benchmarks/fcos_dead_zone.py --steps 20 --starts 0,-1 --out docs/fcos_dead_zone.md

The host study's FCOS row (``configs/synth/hosts/fcos_mrae_t2.yaml``: ResNet-18 with the
proxy-pretrained trunk, MRAE template 2, 256 channels) is built with each box coding
(``model.fcos.box_coding``: ``relu``, torchvision's, or ``exp``, the FCOS paper's ``exp(s x)``);
the bias of its box conv is then set to each ``--starts`` value (torchvision's init is 0; the conv's
weights keep their N(0, 0.01) init, so the raw outputs sit around that value) and the model trains
``--steps`` SGD steps (the recipe's lr 0.02, momentum 0.9, weight decay 1e-4, gradient clip 10; no
warm-up) on one fixed batch: the top-left ``--crop`` x ``--crop`` px of the first two training
images with the boxes wholly inside. Columns: the GIoU box loss at the first step and at the
last, the first step at which it is under 0.9 (a box loss of 1.0 is boxes collapsed to points),
and the gradient norm of the box conv at the first step.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/synth/hosts/fcos_mrae_t2.yaml"


def fixed_batch(crop: int) -> tuple[list, list]:
    """The top-left ``crop`` px of the first two training images and their boxes wholly inside."""
    from mrae.data.coco import CocoDetection
    from mrae.engine.config import load_config, resolve_data

    paths = resolve_data(load_config(REPO / CONFIG))
    dataset = CocoDetection(paths["train_images"], paths["train_annotations"], train=True)
    images, targets = [], []
    for index in range(2):
        image, target = dataset[index]
        inside = (target["boxes"][:, 2] <= crop) & (target["boxes"][:, 3] <= crop)
        images.append(image[:, :crop, :crop])
        targets.append({"boxes": target["boxes"][inside], "labels": target["labels"][inside]})
    return images, targets


def train_from(box_coding: str, start: float, steps: int, batch: tuple, seed: int) -> dict:
    """The box losses of ``steps`` steps of the row built with ``box_coding``, box bias ``start``."""
    import torch

    from mrae.engine.config import load_config, to_dict, with_num_classes
    from mrae.engine.optim import build_optimizer
    from mrae.engine.pretrain import resolve_pretrained
    from mrae.modeling.detector import build_detector

    cfg = with_num_classes(load_config(REPO / CONFIG), 7)
    torch.manual_seed(seed)
    kwargs = {**to_dict(cfg.model), "pretrained": resolve_pretrained(cfg, progress=False)}
    kwargs.update(fcos_settings(box_coding))
    model = build_detector(**kwargs).train()
    box_conv = model.head.regression_head.bbox_reg
    torch.nn.init.constant_(box_conv.bias, start)
    optimizer = build_optimizer(model, cfg.train)
    images, targets = batch
    losses, first_gradient = [], None
    for _ in range(steps):
        found = model(images, [dict(t) for t in targets])
        optimizer.zero_grad()
        sum(found.values()).backward()
        if first_gradient is None:
            first_gradient = float(torch.cat([box_conv.weight.grad.flatten(), box_conv.bias.grad]).norm())
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.train.clip_grad_norm))
        optimizer.step()
        losses.append(float(found["bbox_regression"].detach()))
    return {"losses": losses, "gradient": first_gradient}


def fcos_settings(box_coding: str) -> dict:
    """The build keywords that choose FCOS's box coding."""
    return {"box_coding": box_coding}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--starts", default="0,-1,-3", help="box conv biases to start from (default 0,-1,-3)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    add_out_arguments(parser)
    args = parser.parse_args()
    check_out(parser, args)
    try:
        starts = [float(s) for s in args.starts.split(",")]
    except ValueError:
        parser.error(f"--starts {args.starts!r}: give numbers separated by commas, e.g. 0,-1,-3")
    if args.steps < 1 or args.crop < 32:
        parser.error("--steps must be >= 1 and --crop >= 32")

    import torch

    torch.set_num_threads(1)
    batch = fixed_batch(args.crop)
    if not all(len(t["boxes"]) for t in batch[1]):
        parser.error(f"--crop {args.crop}: an image has no box wholly inside its top-left corner; "
                     "give a larger crop")
    rows = []
    for start in starts:
        for coding in ("relu", "exp"):
            r = train_from(coding, start, args.steps, batch, args.seed)
            under = next((i + 1 for i, v in enumerate(r["losses"]) if v < 0.9), None)
            rows.append([coding, f"{start:g}", f"{r['losses'][0]:.3f}", f"{r['losses'][-1]:.3f}",
                         "never" if under is None else str(under), f"{r['gradient']:.2g}"])
            print(rows[-1], file=sys.stderr)
    objects = sum(len(t["boxes"]) for t in batch[1])
    header = ["box coding", "box bias at the start", "box loss, step 1", f"box loss, step {args.steps}",
              "first step under 0.9", "box conv gradient norm, step 1"]
    note = (f"FCOS MRAE template 2 ({CONFIG}), {args.steps} SGD steps on one batch: the top-left "
            f"{args.crop} x {args.crop} px of the first 2 training images, {objects} objects; seed "
            f"{args.seed}; {torch.get_num_threads()} thread(s).")
    emit_table(header, rows, note, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
