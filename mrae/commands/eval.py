"""`mrae eval --checkpoint CKPT`: COCO evaluation of a checkpoint, the paper's Table 2 columns.

``mrae eval --config X.yaml --checkpoint CKPT [key=value ...] [--out DIR] [--split val]
[--max-dets 1,100,1500] [--detections-per-img N] [--group-by REGEX]
[--slice HxW --overlap F --merge nms|greedy --full-pass ...]``: :mod:`mrae.apps.evaluate` does the
work, :mod:`mrae.evaluation` the measuring. Prints the paper's table, the diagnostic table (tiny
buckets, proposal recall), AP at each maxDets past 100, TIDE's error breakdown and the AP per
group; writes them all into the metrics JSON.
"""

from __future__ import annotations

import argparse

from mrae.apps.evaluate import evaluate_checkpoint, write_evaluation
from mrae.choices import DIAGNOSTIC_COLUMNS
from mrae.commands.slicing_flags import add_slice_arguments, slice_options
from mrae.evaluation.coco_metrics import SIZE_NOTE, TABLE_HEADER, markdown_row, table_header
from mrae.evaluation.options import check_max_dets, parse_group_by, parse_max_dets
from mrae.evaluation.report import error_table, group_table, max_dets_table
from mrae.evaluation.slicing import describe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="YAML config whose data section names the dataset (default: RUN_DIR/config.yaml "
        "of the checkpoint's run, else the config stored in the checkpoint)",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (.pth) to evaluate, or an .onnx file of mrae export (onnxruntime)")
    parser.add_argument(
        "overrides", nargs="*", default=[], help="config overrides as key.sub=value, e.g. eval.max_images=50"
    )
    parser.add_argument(
        "--out", help="folder for the metrics and detections JSON (default: RUN_DIR/eval/)"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace metrics or detections files in --out that this evaluation did not write",
    )
    parser.add_argument("--split", choices=("val", "train"), default="val", help="dataset split (default: val)")
    parser.add_argument(
        "--max-images", type=int, help="evaluate the first N images (default: eval.max_images, else all)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the config's train.device)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--max-dets", help="detections per image COCOeval counts, increasing, AP at the last: "
        "e.g. 100,300,1000 or AI-TOD's 1,100,1500 (default: eval.max_dets, COCO's 1,10,100); "
        "the last at most the model's cap")
    parser.add_argument(
        "--detections-per-img", type=int,
        help="the model's cap of detections per image for this evaluation (default: its own, "
        "model.detections_per_img)")
    parser.add_argument(
        "--detections-per-class", type=int,
        help="the model's cap of detections per class and image (default: model.detections_per_class)")
    parser.add_argument(
        "--group-by", help="AP per condition: a regular expression with named groups on the image "
        "file names, e.g. '^(?P<light>[01])_(?P<altitude>\\d+)_' (HIT-UAV), or FIELD: / "
        "FIELD:REGEX for a field of the image records (default: eval.group_by)")
    add_slice_arguments(parser)


def main(args: argparse.Namespace) -> int:
    slicing = slice_options(args)  # checked before the model is loaded, like these
    max_dets = check_max_dets(parse_max_dets(args.max_dets)) if args.max_dets is not None else None
    group_by = parse_group_by(args.group_by) if args.group_by is not None else None
    evaluation = evaluate_checkpoint(
        args.checkpoint, config=args.config, overrides=list(args.overrides), split=args.split,
        max_images=args.max_images, device=args.device, out=args.out,
        progress=not args.no_progress, slicing=slicing, overwrite=args.overwrite,
        max_dets=max_dets, group_by=group_by, detections_per_img=args.detections_per_img,
        detections_per_class=args.detections_per_class,
    )
    name, metrics = evaluation.name, evaluation.metrics
    print(TABLE_HEADER)
    print(markdown_row(name, metrics))
    print()
    print(table_header(DIAGNOSTIC_COLUMNS))
    print(markdown_row(name, metrics, DIAGNOSTIC_COLUMNS))
    print(SIZE_NOTE)
    for table in (max_dets_table(name, metrics, evaluation.max_dets), error_table(name, metrics),
                  group_table(metrics, evaluation.group_by)):
        if table:
            print()
            print(table)
    if slicing is not None:
        print(f"Sliced inference: {describe(slicing)} (native px); no proposal recall.")
    metrics_path, results_path = write_evaluation(evaluation, overwrite=args.overwrite)
    print(f"\nwrote {metrics_path} and {results_path} ({len(evaluation.detections)} detections)")
    return 0
