"""AP and time per image with and without sliced inference (docs/slicing.md).

    python benchmarks/slicing.py --checkpoint CKPT --data DATA [--max-images 25]
        [--slice 300x512 --overlap 0.2 --merge nms|greedy --full-pass ...]

DATA is a folder written by ``mrae synth DATA --large`` (its ``images/val`` and
``annotations/instances_val.json`` are read). Prints a markdown table: one row for the whole image
(the model's own resize), one for the sliced inference (all the slicing flags of ``mrae eval``).
AP columns are pycocotools' COCOeval x100 in original-image pixels; ms is CPU/GPU time per image
(every tile and the full pass counted).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mrae.commands.slicing_flags import add_slice_arguments, slice_options
from mrae.errors import ConfigError
from mrae.evaluation.slicing import SliceOptions

COLUMNS = ("AP", "AP50", "APs", "APm", "AR100", "ms_per_image")


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, SliceOptions]:
    """The arguments and the slicing options (``--slice`` defaults to 300x512: the model's input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint (.pth) from mrae train")
    parser.add_argument("--data", required=True, help="folder written by mrae synth DATA --large")
    parser.add_argument("--max-images", type=int, default=25, help="validation images (default 25)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    add_slice_arguments(parser)
    args = parser.parse_args(argv)
    if args.slice is None:
        args.slice = "300x512"
    if args.max_images < 1:
        raise ConfigError(f"--max-images must be >= 1, got {args.max_images}")
    options = slice_options(args)
    assert options is not None
    return args, options


def main(argv: Sequence[str] | None = None) -> None:
    from pathlib import Path

    from mrae.data.coco import CocoDetection
    from mrae.engine.checkpoint import load_model
    from mrae.evaluation.coco_metrics import markdown_row, table_header
    from mrae.evaluation.evaluator import evaluate_model
    from mrae.evaluation.slicing import describe

    args, options = parse_args(argv)
    data = Path(args.data)
    dataset = CocoDetection(data / "images" / "val", data / "annotations" / "instances_val.json", train=False)
    model, _, _ = load_model(args.checkpoint, device="cpu")
    rows = []
    for name, slicing in (("whole image", None), (f"sliced ({describe(options)})", options)):
        metrics, _ = evaluate_model(model, dataset, device=args.device, max_images=args.max_images,
                                    progress=False, slicing=slicing)
        rows.append(markdown_row(name, metrics, COLUMNS))
    print(table_header(COLUMNS, name="inference"))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
