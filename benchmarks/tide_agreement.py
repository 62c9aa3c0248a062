"""mrae's TIDE breakdown (mrae.evaluation.tide) against tidecv 1.0.1 on one detections file.

    python benchmarks/tide_agreement.py --annotations GT.json --detections DETS.json [--out FILE]

Both run over the ground truth's images with TIDE's defaults (foreground IoU 0.5, background
0.1, 100 detections an image); the table gives the AP50, each error type's dAP (x100) and count
from both, and their seconds. tidecv needs a ``segmentation`` in every ground-truth annotation:
a copy of the file with each box as its polygon is given to it.

tidecv is not a dependency of mrae (it pulls opencv, seaborn, pandas and matplotlib for its
plots): install it beside (``pip install --target /tmp/tide tidecv opencv-python-headless seaborn
pandas appdirs`` and ``PYTHONPATH=/tmp/tide``) to run this.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table_out import add_out_arguments, check_out, emit_table  # noqa: E402

from mrae.evaluation.tide import ERROR_TITLES, ERROR_TYPES, error_breakdown  # noqa: E402

#: tidecv's short names of mrae's error types.
TIDECV_NAMES = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupl": "Dupe", "bkg": "Bkg", "miss": "Miss"}


def with_polygons(annotations: Path, folder: Path) -> Path:
    data = json.loads(annotations.read_text())
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        a.setdefault("segmentation", [[x, y, x + w, y, x + w, y + h, x, y + h]])
    path = folder / "gt_with_polygons.json"
    path.write_text(json.dumps(data))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", required=True, help="COCO instances JSON (ground truth)")
    parser.add_argument("--detections", required=True, help="COCO results JSON of a model on it")
    add_out_arguments(parser)
    args = parser.parse_args(argv)
    check_out(parser, args)

    from pycocotools.coco import COCO
    from tidecv import TIDE, datasets

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(args.annotations)
    detections = json.loads(Path(args.detections).read_text())
    start = time.perf_counter()
    ours = error_breakdown(gt, detections, sorted(gt.getImgIds()))
    ours_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        gt_file = with_polygons(Path(args.annotations), Path(folder))
        start = time.perf_counter()
        tide = TIDE()
        with contextlib.redirect_stdout(io.StringIO()):
            tide.evaluate(datasets.COCO(str(gt_file)), datasets.COCOResult(args.detections),
                          mode=TIDE.BOX)
        run = next(iter(tide.runs.values()))
        fixed = {k.short_name: v for k, v in run.fix_main_errors().items()}
        counts = {k.short_name: len(v) for k, v in run.error_dict.items()}
        theirs_s = time.perf_counter() - start

    rows = [["AP50", f"{100 * ours['TIDE_AP50']:.3f}", f"{run.ap:.3f}", "", ""]]
    for kind in ERROR_TYPES:
        name = TIDECV_NAMES[kind]
        rows.append([f"dAP {ERROR_TITLES[kind]}", f"{100 * ours[f'dAP_{kind}']:.3f}",
                     f"{fixed[name]:.3f}", f"{int(ours[f'errors_{kind}'])}", f"{counts[name]}"])
    rows.append(["seconds", f"{ours_s:.2f}", f"{theirs_s:.2f}", "", ""])
    header = ["", "mrae", "tidecv 1.0.1", "errors (mrae)", "errors (tidecv)"]
    note = (f"`python benchmarks/tide_agreement.py --annotations {args.annotations} --detections "
            f"{args.detections}`: {len(gt.getImgIds())} images, {len(detections)} detections; "
            "AP50 and dAP x100.")
    emit_table(header, rows, note, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
