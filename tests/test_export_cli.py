"""`mrae export` on a checkpoint of each host, and `mrae eval` / `mrae predict` running the .onnx
file on onnxruntime (whole and sliced), as they run a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mrae import cli

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export") / "data"
    assert cli.main(["synth", str(root), "--images", "2", "--val-images", "2", "--seed", "1",
                     "--width", "128", "--height", "96", "--workers", "0"]) == 0
    return root


def _checkpoint(path: Path, root: Path, host: str) -> Path:
    """A random tiny detector of ``host`` saved as `mrae train` does, on the synthetic classes."""
    from mrae.data.coco import CocoDetection
    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.config import load_config, to_dict
    from mrae.engine.model import build_model

    val = CocoDetection(root / "images" / "val", root / "annotations" / "instances_val.json", train=False)
    config = path.with_suffix(".yaml")
    config.write_text(
        f"model: {{detector: {host}, extractor: mrae, backbone: resnet18, out_channels: 16, "
        f"num_classes: {len(val.class_names) + 1}, min_size: 96, max_size: 128}}\n"
        f"data: {{train_images: {root}/images/train, train_annotations: {root}/annotations/instances_train.json, "
        f"val_images: {root}/images/val, val_annotations: {root}/annotations/instances_val.json, workers: 0}}\n"
        "train: {device: cpu}\n"
    )
    cfg = load_config(config)
    torch.manual_seed(0)
    save_checkpoint(path, {"model": build_model(cfg).state_dict(), "config": to_dict(cfg),
                           "class_names": list(val.class_names), "label_to_cat": dict(val.label_to_cat),
                           "step": 0, "best_metric": None})
    return path


@pytest.mark.parametrize("host", ["faster_rcnn", "retinanet", "fcos"])
def test_export_then_eval_and_predict_on_onnxruntime(host, data_root, tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path / "model.pth", data_root, host)
    onnx_file = tmp_path / "model.onnx"
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(onnx_file)]) == 0
    stamp = onnx_file.stat().st_mtime_ns
    assert cli.main(["export", "--checkpoint", str(checkpoint), "--out", str(onnx_file)]) == 2
    assert "exists; give another name or --overwrite" in capsys.readouterr().err
    assert onnx_file.stat().st_mtime_ns == stamp

    records = {}
    for source, extra in [(checkpoint, []), (onnx_file, []), (onnx_file, ["--slice", "48x64"])]:
        out = tmp_path / f"eval_{source.suffix[1:]}{'_sliced' if extra else ''}"
        assert cli.main(["eval", "--checkpoint", str(source), "--out", str(out), "--no-progress", *extra]) == 0
        name = "detections_val_slice48x64.json" if extra else "detections_val.json"  # sliced: named by its tiles
        records[out.name] = json.loads((out / name).read_text())
    if host == "faster_rcnn":  # no near-ties in a random Faster R-CNN: the same detections
        assert len(records["eval_onnx"]) == len(records["eval_pth"])

    for extra in ([], ["--slice", "48x64"]):
        out = tmp_path / f"pictures{len(extra)}"
        assert cli.main(["predict", "--checkpoint", str(onnx_file), str(data_root / "images" / "val"),
                         "--out", str(out), "--score-thresh", "0.0", *extra]) == 0
        assert len(list(out.glob("*.jpg"))) == 2
