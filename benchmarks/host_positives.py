"""How many positives each training object gets in each host study row: the anchors (RetinaNet,
Faster R-CNN's RPN) or points (FCOS) that the host's own matching assigns to it, on the synthetic
training set at the model's input size.

    python benchmarks/host_positives.py                    # 800 training images, the table
    python benchmarks/host_positives.py --images 200 --out docs/host_positives.md

Each row builds the row's model from its config (``configs/synth/...``: the study's files, random
weights; nothing is trained or read but the boxes), puts every map position of the extractor's
maps at the training images' padded size, and runs the host's own matching on the training boxes:
torchvision's ``FCOS.compute_loss`` (a point inside the box and within 1.5 strides of its centre;
one box per point, the smallest) or the ``Matcher`` of RetinaNet / the RPN (IoU >= 0.5 / 0.7,
plus each box's best anchors). The head's loss is not computed: the matching is captured where
it is handed to the head. Columns: the map's stride; anchors or points per image; positives per
object (mean, and by object size, the square root of the box's area in pixels); the share of
objects with no positive at all (an object that no anchor or point learns from) and with at most
two. This measures what a row's head is asked to learn from, not what it learns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROWS = {
    "Faster R-CNN RPN, MRAE template 2": "configs/synth/mrae_t2.yaml",
    "Faster R-CNN RPN, single C2": "configs/synth/single_c2.yaml",
    "RetinaNet, MRAE template 2": "configs/synth/hosts/retinanet_mrae_t2.yaml",
    "RetinaNet, single C2": "configs/synth/hosts/retinanet_single_c2.yaml",
    "RetinaNet, sum": "configs/synth/hosts/retinanet_sum.yaml",
    "FCOS, MRAE template 2": "configs/synth/hosts/fcos_mrae_t2.yaml",
    "FCOS, single C2": "configs/synth/hosts/fcos_single_c2.yaml",
    "FCOS, sum": "configs/synth/hosts/fcos_sum.yaml",
}
SIZE_BINS = ((0, 8), (8, 16), (16, 32), (32, float("inf")))  # sqrt(area), px


def _bin_name(low: float, high: float) -> str:
    return f">= {low:g} px" if high == float("inf") else f"{low:g}-{high:g} px"


def training_targets(annotations: Path, limit: int) -> tuple[list[dict], tuple[int, int]]:
    """The first ``limit`` training images' boxes (xyxy, px) and labels, and their (height, width)."""
    import torch

    coco = json.loads(annotations.read_text())
    images = sorted(coco["images"], key=lambda i: i["id"])[:limit]
    sizes = {(i["height"], i["width"]) for i in images}
    if len(sizes) != 1:
        raise SystemExit(f"{annotations}: the images differ in size {sorted(sizes)}; this benchmark "
                         "expects the synthetic set's one size")
    by_image: dict[int, list] = {i["id"]: [] for i in images}
    for a in coco["annotations"]:
        if a["image_id"] in by_image and not a.get("iscrowd", 0):
            by_image[a["image_id"]].append(a)
    targets = []
    for anns in by_image.values():
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        targets.append({"boxes": boxes, "labels": torch.tensor([a["category_id"] for a in anns])})
    return targets, sizes.pop()


def matched_per_image(model, targets: list[dict], image_size: tuple[int, int]) -> tuple[list, int, list, list]:
    """The host's own matching for every target: (one tensor per image of each anchor's matched
    box index or < 0, anchors per image, the maps' strides, the targets at the model's size)."""
    import torch
    from torchvision.models.detection.image_list import ImageList

    model.train()
    shapes = model.backbone.output_shape()
    images, resized = model.transform([torch.zeros(3, *image_size)] * len(targets),
                                      [dict(t) for t in targets])
    height, width = images.tensors.shape[-2:]
    one = ImageList(images.tensors[:1], images.image_sizes[:1])
    features = [torch.zeros(1, 1, -(-height // s.stride), -(-width // s.stride)) for s in shapes.values()]
    anchors = model.anchor_generator(one, features)[0] if hasattr(model, "anchor_generator") \
        else model.rpn.anchor_generator(one, features)[0]
    positions = [f.shape[-2] * f.shape[-1] for f in features]
    per_level = [p * (len(anchors) // sum(positions)) for p in positions]
    matched: list = []
    if hasattr(model, "rpn"):
        from torchvision.ops import box_iou

        for t in resized:
            matched.append(model.rpn.proposal_matcher(box_iou(t["boxes"], anchors)))
    else:
        head = model.head
        original = head.compute_loss
        head.compute_loss = lambda targets, outputs, anchors, idxs: matched.extend(idxs) or {}
        try:
            args = [resized, {}, [anchors] * len(resized)]
            if "num_anchors_per_level" in model.compute_loss.__code__.co_varnames:
                args.append(per_level)
            model.compute_loss(*args)
        finally:
            head.compute_loss = original
    return matched, len(anchors), [s.stride for s in shapes.values()], resized


def measure(config: str, targets: list[dict], image_size: tuple[int, int]) -> dict:
    """Positives per object for the row of ``config``: see the module docstring."""
    import torch

    from mrae.engine.config import load_config
    from mrae.engine.model import build_model

    cfg = load_config(REPO / config)
    model = build_model(cfg, num_classes=7)
    matched, anchors, strides, resized = matched_per_image(model, targets, image_size)
    counts, sizes = [], []
    for idxs, target in zip(matched, resized, strict=True):
        boxes = target["boxes"]
        positive = idxs[idxs >= 0]
        counts.append(torch.bincount(positive, minlength=len(boxes)))
        sizes.append(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt())
    count = torch.cat(counts).float()
    size = torch.cat(sizes)
    by_size = {}
    for low, high in SIZE_BINS:
        inside = (size >= low) & (size < high)
        by_size[_bin_name(low, high)] = (float(count[inside].mean()) if inside.any() else None,
                                         int(inside.sum()))
    return {"stride": "/".join(str(s) for s in strides), "anchors": anchors,
            "objects": len(count), "mean": float(count.mean()), "by_size": by_size,
            "none": float((count == 0).float().mean()), "at_most_2": float((count <= 2).float().mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800, help="training images (default: all 800)")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help="row names (default: all)")
    add_out_arguments(parser)
    args = parser.parse_args()
    check_out(parser, args)
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"--rows {unknown} are not rows; choose from {list(ROWS)}")

    import torch

    from mrae.engine.config import load_config, resolve_data

    torch.set_num_threads(1)
    train_json = resolve_data(load_config(REPO / ROWS[args.rows[0]]))["train_annotations"]
    targets, image_size = training_targets(Path(train_json), args.images)
    results = {}
    for name in args.rows:
        results[name] = measure(ROWS[name], targets, image_size)
        print(f"{name}: {results[name]}", file=sys.stderr)
    bins = list(next(iter(results.values()))["by_size"])
    header = ["row", "stride", "anchors / image", "positives / object",
              *[f"{b} ({results[args.rows[0]]['by_size'][b][1]} objects)" for b in bins],
              "objects with none", "with <= 2"]
    rows = [[name, r["stride"], f"{r['anchors']:,}", f"{r['mean']:.1f}",
             *["-" if r["by_size"][b][0] is None else f"{r['by_size'][b][0]:.1f}" for b in bins],
             f"{100 * r['none']:.1f}%", f"{100 * r['at_most_2']:.1f}%"] for name, r in results.items()]
    first = next(iter(results.values()))
    note = (f"{first['objects']} objects in the first {len(targets)} training images of "
            f"{train_json} ({image_size[1]}x{image_size[0]}, the model's input size); positives "
            "by object size are the mean over the objects of that size (sqrt of the box's area).")
    emit_table(header, rows, note, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
