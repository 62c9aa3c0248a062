"""Why RetinaNet does not learn on the synthetic recipe: the candidate causes measured, one change
at a time, at a short budget.

    python benchmarks/retinanet_probe.py                            # every variant, the tables
    python benchmarks/retinanet_probe.py --only before,group-norm --steps 60
    python benchmarks/retinanet_probe.py --only kaiming --add --json docs/retinanet_probe.json
    python benchmarks/retinanet_probe.py --render-only --json docs/retinanet_probe.json --out ... --plot ...
    python benchmarks/retinanet_probe.py --out docs/retinanet_probe_table.md \\
        --json docs/retinanet_probe.json --plot docs/retinanet_probe.png

Every variant trains the host study's RetinaNet row ``configs/synth/hosts/retinanet_mrae_t2.yaml``
(ResNet-18 with the proxy-pretrained trunk, MRAE template 2 on the stride-4 map, the clustered
4 x 3 anchors, SGD lr 0.02 with a 30-step warm-up, batch 2) for ``--steps`` steps on random
``--crop`` crops of the training images at the full image's scale (the crops keep the anchors'
density, stride and sizes, so the positives per object and the ratio of negatives to positives
stay those of whole images), with the lr drops at 70% and 90% of the steps. ``before`` is the
head the study ran (torchvision's v1 RetinaNet head: no norm in its towers, ``head_norm: none``);
every other variant changes one thing of it, the ``group-norm`` variant its head's norm
(``head_norm: group``, torchvision's RetinaNet v2 head).

Measured per variant:

- AP50 and AP on the first ``--val-images`` validation images (whole 512x300 images), ``--evals``
  times during the run (the learning curve) and after the last step;
- on ``--diag-images`` training images (whole, after training): the mean score of the positive
  anchors for their object's class, the mean of the highest class score of the negative anchors,
  and the spread (standard deviation) of each anchor's highest score over all anchors: a
  classifier that scores every anchor alike has spread 0;
- the classification loss (mean of the last 3 logged values) and the seconds per step.

And before any training, on 2 training images at full size: how each head tower carries the
signal (the RMS of each conv block's output over that of the tower's input) and how much of the
classification loss the negatives make, per head.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/synth/hosts/retinanet_mrae_t2.yaml"


@dataclass(frozen=True)
class Variant:
    """One change of the study's RetinaNet row: build settings, config overrides, a change to the
    built model, or the focal loss's parameters."""

    what: str
    build: dict = field(default_factory=dict)  # build_detector keywords
    overrides: tuple[str, ...] = ()  # config overrides
    change: Callable | None = None  # model -> None, after it is built
    focal: dict = field(default_factory=dict)  # sigmoid_focal_loss's alpha / gamma


def _prior(probability: float) -> Callable:
    def change(model) -> None:
        import torch

        bias = -math.log((1 - probability) / probability)
        torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, bias)
    return change


def _matcher(high: float, low: float) -> Callable:
    def change(model) -> None:
        from torchvision.models.detection._utils import Matcher

        model.proposal_matcher = Matcher(high, low, allow_low_quality_matches=True)
    return change


def _batch_normaliser(model) -> None:
    """Both losses summed over the batch and divided by a running mean (momentum 0.9) of the
    batch's positives, as detectron2's RetinaNet, instead of torchvision's per-image division by
    that image's own positives (at least 1): an image with few or no positives then cannot blow
    its negatives' loss up."""
    import torch
    from torchvision.models.detection import retinanet
    from torchvision.ops import sigmoid_focal_loss

    head, state = model.head, {"mean": None}

    def normaliser(matched_idxs: list) -> float:
        positives = max(1.0, float(sum(int((m >= 0).sum()) for m in matched_idxs)))
        state["mean"] = positives if state["mean"] is None else 0.9 * state["mean"] + 0.1 * positives
        return state["mean"]

    def classification(targets, head_outputs, matched_idxs):
        total = 0.0
        for target, logits, matched in zip(targets, head_outputs["cls_logits"], matched_idxs, strict=True):
            wanted = torch.zeros_like(logits)
            positive = matched >= 0
            wanted[positive, target["labels"][matched[positive]]] = 1.0
            valid = matched != head.classification_head.BETWEEN_THRESHOLDS
            total = total + sigmoid_focal_loss(logits[valid], wanted[valid], reduction="sum")
        state["classification"] = normaliser(matched_idxs)
        return total / state["classification"]

    def regression(targets, head_outputs, anchors, matched_idxs):
        total = 0.0
        box = head.regression_head
        for target, deltas, image_anchors, matched in zip(targets, head_outputs["bbox_regression"], anchors,
                                                           matched_idxs, strict=True):
            positive = torch.where(matched >= 0)[0]
            total = total + retinanet._box_loss(box._loss_type, box.box_coder, image_anchors[positive],
                                                target["boxes"][matched[positive]], deltas[positive])
        return total / state["classification"]  # the same step's normaliser

    head.classification_head.compute_loss = classification
    head.regression_head.compute_loss = regression


NONE = {"head_norm": "none", "head_init": "normal"}
VARIANTS: dict[str, Variant] = {
    "before": Variant("the study's head: torchvision's v1 (no norm, N(0, 0.01) convs)", NONE),
    "group-norm": Variant("GroupNorm after every tower conv (torchvision's v2 head)", {"head_norm": "group"}),
    "group-norm-lr-0.01": Variant("GroupNorm head, half the lr (0.01)", {"head_norm": "group"},
                                  ("train.lr=0.01",)),
    "group-norm-batch-normaliser": Variant(
        "GroupNorm head, losses over the batch / running mean of its positives (detectron2's)",
        {"head_norm": "group"}, change=_batch_normaliser),
    "kaiming": Variant("v1 head, tower convs with Kaiming init (no norm)", {**NONE, "head_init": "kaiming"}),
    "lr-0.01": Variant("v1 head, half the lr (0.01)", NONE, ("train.lr=0.01",)),
    "warmup-100": Variant("v1 head, a 100-step warm-up (30)", NONE, ("train.warmup_steps=100",)),
    "prior-0.001": Variant("v1 head, classification prior 0.001 (0.01)", NONE, change=_prior(0.001)),
    "gamma-1": Variant("v1 head, focal loss gamma 1 (2)", NONE, focal={"gamma": 1.0}),
    "iou-0.4": Variant("v1 head, positives at IoU >= 0.4, negatives < 0.3 (0.5 / 0.4)", NONE,
                       change=_matcher(0.4, 0.3)),
}


@contextlib.contextmanager
def focal_loss(**params: float) -> Iterator[None]:
    """torchvision's RetinaNet classification loss with other ``alpha`` / ``gamma`` meanwhile."""
    from torchvision.models.detection import retinanet

    original = retinanet.sigmoid_focal_loss
    if params:
        retinanet.sigmoid_focal_loss = functools.partial(original, **params)
    try:
        yield
    finally:
        retinanet.sigmoid_focal_loss = original


def probe_trainer(variant: Variant) -> type:
    """A :class:`~mrae.engine.trainer.Trainer` that builds the variant's model."""
    from mrae.engine.config import to_dict
    from mrae.engine.trainer import Trainer
    from mrae.modeling.detector import build_detector

    class ProbeTrainer(Trainer):
        def build_model(self, weights_later: bool):
            kwargs = {**to_dict(self.cfg.model), "pretrained": self.pretrained, **variant.build}
            model = build_detector(**kwargs)
            if variant.change is not None:
                variant.change(model)
            return model

    return ProbeTrainer


def head_inputs(model, images: list, targets: list) -> tuple:
    """(the extractor's maps, the anchors, the resized targets) of ``images`` at the model's size."""
    transformed, resized = model.transform(images, [dict(t) for t in targets])
    features = list(model.backbone(transformed.tensors).values())
    anchors = model.anchor_generator(transformed, features)
    return features, anchors, resized


def anchor_scores(model, images: list, targets: list) -> dict[str, float]:
    """Mean positive score (the object's class), mean negative score (the highest class) and the
    spread of every anchor's highest score, over ``images`` (torchvision's matching)."""
    import torch
    from torchvision.ops import box_iou

    positive, negative, highest = [], [], []
    with torch.no_grad():
        features, anchors, resized = head_inputs(model, images, targets)
        scores = torch.sigmoid(model.head(features)["cls_logits"])  # [N, anchors, classes]
        for image_scores, image_anchors, target in zip(scores, anchors, resized, strict=True):
            matched = model.proposal_matcher(box_iou(target["boxes"], image_anchors))
            is_positive = matched >= 0
            labels = target["labels"][matched[is_positive]]
            positive.append(image_scores[is_positive].gather(1, labels[:, None]).squeeze(1))
            top = image_scores.max(dim=1).values
            negative.append(top[matched == -1])
            highest.append(top)
    return {"positive_score": float(torch.cat(positive).mean()),
            "negative_score": float(torch.cat(negative).mean()),
            "spread": float(torch.cat(highest).std())}


def tower_signal(model, images: list, targets: list) -> dict[str, object]:
    """For a freshly built model: the RMS of each classification-tower block's output over the
    tower's input's, the spread of the logits over anchors, and the negatives' share of the
    classification loss (negatives: the anchors matched to nothing)."""
    import torch
    from torchvision.ops import box_iou, sigmoid_focal_loss

    with torch.no_grad():
        features, anchors, resized = head_inputs(model, images, targets)
        head = model.head.classification_head
        signal = features[0]
        rms_in = float(signal.pow(2).mean().sqrt())
        ratios = []
        for block in head.conv:
            signal = block(signal)
            ratios.append(float(signal.pow(2).mean().sqrt()) / rms_in)
        logits = model.head(features)["cls_logits"]
        negative_loss = total = 0.0
        for image_logits, image_anchors, target in zip(logits, anchors, resized, strict=True):
            matched = model.proposal_matcher(box_iou(target["boxes"], image_anchors))
            wanted = torch.zeros_like(image_logits)
            wanted[matched >= 0, target["labels"][matched[matched >= 0]]] = 1.0
            valid = matched != -2
            loss = sigmoid_focal_loss(image_logits, wanted, reduction="none").sum(dim=1)
            negative_loss += float(loss[matched == -1].sum())
            total += float(loss[valid].sum())
    return {"input_rms": rms_in, "block_ratios": ratios, "logit_spread": float(logits.std()),
            "negative_share": negative_loss / total}


def read_log(path: Path) -> dict[str, list]:
    """The run's curve from its ``metrics.jsonl``: training lines and evaluations."""
    train, evals = [], []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "eval" in record:
            evals.append({"step": record["step"], "AP50": record["eval"]["AP50"], "AP": record["eval"]["AP"]})
        elif "classification" in record:
            train.append({k: record[k] for k in ("step", "classification", "bbox_regression",
                                                 "step_seconds") if k in record})
    return {"train": train, "evals": evals}


def run_variant(name: str, variant: Variant, args: argparse.Namespace, data: tuple) -> dict:
    """Train one variant in a temporary run folder; its curve, final metrics and scores."""
    from mrae.engine import distributed
    from mrae.engine.config import load_config

    steps = args.steps
    overrides = [
        f"data.train_crop=[{args.crop},{args.crop}]", f"train.steps={steps}",
        f"train.milestones=[{round(0.7 * steps)},{round(0.9 * steps)}]",
        f"train.eval_every={max(1, steps // args.evals)}", "train.checkpoint_every=0",
        "train.log_every=5", f"eval.max_images={args.val_images}", "data.workers=0",
        f"train.seed={args.seed}", *variant.overrides,
    ]
    cfg = load_config(REPO / CONFIG, overrides)
    folder = Path(tempfile.mkdtemp(prefix=f"retinanet_probe_{name}_"))
    load_before = os.getloadavg()[0]
    try:
        started = time.time()
        with focal_loss(**variant.focal):
            trainer = probe_trainer(variant)(cfg, folder / "run", distributed.setup("cpu"))
            metrics = trainer.train()
            images, targets = data
            trainer.model.eval()
            scores = anchor_scores(trainer.model, images, targets)
        curve = read_log(folder / "run" / "metrics.jsonl")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = [r["step_seconds"] for r in curve["train"] if "step_seconds" in r]
    return {"what": variant.what, "overrides": overrides, "AP50": metrics.get("AP50"), "AP": metrics.get("AP"),
            "classification": statistics.mean(r["classification"] for r in curve["train"][-3:]),
            "step_seconds": statistics.median(seconds) if seconds else None,
            "minutes": (time.time() - started) / 60, "load": [load_before, os.getloadavg()[0]],
            "date": datetime.date.today().isoformat(),
            **scores, "curve": curve}


def results_args(args: argparse.Namespace) -> dict:
    """The settings every variant of one table shares."""
    return {k: getattr(args, k) for k in ("steps", "crop", "evals", "val_images", "diag_images", "seed")}


def diagnostic_batch(count: int, offset: int = 0) -> tuple[list, list]:
    """``count`` whole training images (from ``offset``) and their targets, as the trainer reads them."""
    from mrae.data.coco import CocoDetection
    from mrae.engine.config import load_config, resolve_data

    paths = resolve_data(load_config(REPO / CONFIG))
    dataset = CocoDetection(paths["train_images"], paths["train_annotations"], train=True)
    pairs = [dataset[i] for i in range(offset, offset + count)]
    return [p[0] for p in pairs], [{k: p[1][k] for k in ("boxes", "labels")} for p in pairs]


def signal_rows(data: tuple, seed: int) -> dict[str, dict]:
    """:func:`tower_signal` of the freshly built head of each kind (the study's trunk)."""
    import torch

    from mrae.engine.config import load_config, to_dict, with_num_classes
    from mrae.engine.pretrain import resolve_pretrained
    from mrae.modeling.detector import build_detector

    cfg = with_num_classes(load_config(REPO / CONFIG), 7)
    pretrained = resolve_pretrained(cfg, progress=False)
    rows = {}
    for name in ("before", "group-norm", "kaiming"):
        variant = VARIANTS[name]
        torch.manual_seed(seed)
        model = build_detector(**{**to_dict(cfg.model), "pretrained": pretrained, **variant.build})
        if variant.change is not None:
            variant.change(model)
        rows[name] = tower_signal(model.train(), *data)
    return rows


def machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s)")


def render(results: dict) -> str:
    """The markdown of the probe's two tables and their notes."""
    from mrae.tables import markdown_table

    signal = results["signal"]
    blocks = len(next(iter(signal.values()))["block_ratios"])
    header = ["head", "tower input RMS", *[f"after conv {i + 1}" for i in range(blocks)],
              "logit spread", "negatives' share of the classification loss"]
    rows = [[VARIANTS[n].what, f"{r['input_rms']:.3g}", *[f"{x:.3g}x" for x in r["block_ratios"]],
             f"{r['logit_spread']:.2g}", f"{100 * r['negative_share']:.1f}%"] for n, r in signal.items()]
    text = ("Before training (2 whole training images; the RMS of each classification-tower block's "
            "output over the tower input's; the logits' standard deviation over anchors and "
            "classes):\n\n" + markdown_table(header, rows) + "\n\n")
    a = results["args"]
    header = ["variant", "what changes", "AP50", "AP", "AP50 during the run",
              "positives' score", "negatives' highest score", "score spread",
              "classification loss (end)", "s / step", "minutes", "load average before / after"]
    rows = []
    for name, r in results["variants"].items():
        during = " / ".join(f"{100 * e['AP50']:.1f}" for e in r["curve"]["evals"])
        rows.append([name, r["what"], f"{100 * r['AP50']:.1f}", f"{100 * r['AP']:.1f}", during,
                     f"{r['positive_score']:.3f}", f"{r['negative_score']:.3f}", f"{r['spread']:.3f}",
                     f"{r['classification']:.3f}", f"{r['step_seconds']:.2f}", f"{r['minutes']:.1f}",
                     " / ".join("-" if x is None else f"{x:.1f}" for x in r["load"])])
    text += (f"After {a['steps']} steps on {a['crop']}x{a['crop']} crops (seed {a['seed']}; AP x100 on "
             f"the first {a['val_images']} val images, {a['evals']} evaluations during the run; scores "
             f"on {a['diag_images']} whole training images):\n\n" + markdown_table(header, rows) + "\n\n")
    text += (f"{results['machine']}; load average: the machine's 1-minute load before and after each "
             f"variant (2 cores shared with other work: read the seconds against it); "
             f"{', '.join(sorted({r['date'] for r in results['variants'].values()}))}.\n")
    return text


def plot(results: dict, path: Path, names: list[str]) -> None:
    """The learning curves of ``names``: classification loss and AP50 against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, ap_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in names:
        curve = results["variants"][name]["curve"]
        loss_axis.plot([r["step"] for r in curve["train"]], [r["classification"] for r in curve["train"]],
                       label=name)
        ap_axis.plot([0] + [e["step"] for e in curve["evals"]], [0] + [100 * e["AP50"] for e in curve["evals"]],
                     marker="o", label=name)
    loss_axis.set(xlabel="step", ylabel="classification loss (focal)", yscale="log")
    ap_axis.set(xlabel="step", ylabel=f"AP50 x100 ({results['args']['val_images']} val images)")
    for axis in (loss_axis, ap_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"RetinaNet, MRAE template 2 (synthetic), {results['args']['crop']} px crops")
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"variants, from {','.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--crop", type=int, default=256, help="training crop side, px (default 256)")
    parser.add_argument("--evals", type=int, default=3, help="evaluations during a run (the last at its end)")
    parser.add_argument("--val-images", type=int, default=20)
    parser.add_argument("--diag-images", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-rows", default="before,group-norm", help="the variants the plot draws")
    parser.add_argument("--out", help="write the tables here (markdown)")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--plot", help="write the learning curves here (png)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out / --json / --plot")
    parser.add_argument("--render-only", action="store_true",
                        help="train nothing: write --out and --plot from --json's measurements")
    parser.add_argument("--add", action="store_true",
                        help="add the variants to --json's (same --steps, --crop, ...; a variant "
                             "run again is replaced) and render them all")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--only {','.join(unknown)}: no such variant; choose from {','.join(VARIANTS)}")
    plotted = [n for n in args.plot_rows.split(",") if n]
    if not set(plotted) <= set(VARIANTS):
        parser.error(f"--plot-rows {args.plot_rows}: choose from {','.join(VARIANTS)}")
    if (args.add or args.render_only) and not (args.json and Path(args.json).is_file()):
        parser.error("--add and --render-only need --json naming the measurements")
    for option in ("out", "json", "plot"):
        value = getattr(args, option)
        if option == "json" and (args.add or args.render_only):
            continue
        if value and Path(value).exists() and not args.overwrite:
            parser.error(f"--{option} {value} exists; give another path, or --overwrite to replace it")
    if min(args.steps, args.crop, args.evals, args.val_images, args.diag_images) < 1:
        parser.error("--steps, --crop, --evals, --val-images and --diag-images must be >= 1")

    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("mrae").setLevel(logging.WARNING)
    if args.render_only:
        results = json.loads(Path(args.json).read_text())
        names = []
    elif args.add:
        results = json.loads(Path(args.json).read_text())
        if results["args"] != results_args(args):
            parser.error(f"--add: {args.json} was measured with {results['args']}; give the same settings")
    else:
        results = {"args": results_args(args), "machine": machine(),
                   "signal": signal_rows(diagnostic_batch(2), args.seed), "variants": {}}
    data = diagnostic_batch(args.diag_images, offset=2) if names else None
    for name in names:
        results["variants"][name] = run_variant(name, VARIANTS[name], args, data)
        r = results["variants"][name]
        print(f"{name}: AP50 {r['AP50']:.3f}, spread {r['spread']:.4f}, {r['minutes']:.1f} min", file=sys.stderr)
        if args.json:  # each variant kept as it finishes
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    text = render(results)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.plot:
        missing = [n for n in plotted if n not in results["variants"]]
        if missing:
            raise SystemExit(f"--plot-rows: {','.join(missing)} not measured; run them (--only) first")
        plot(results, Path(args.plot), plotted)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
