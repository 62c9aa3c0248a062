"""The GPU path, where a CUDA device is: every host trains on it (mixed precision on and off),
resumes, evaluates and predicts (whole and sliced, attention drawn) and exports; every extractor
and every one-stage loss gives on CUDA what it gives on the CPU.

Skipped where there is no CUDA device (CI has none); on a GPU machine:
``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import json

import pytest
import torch

from mrae import cli
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.metrics_log import read_metrics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

EXTRACTORS = [
    {"extractor": "single", "level": 1},
    {"extractor": "single", "level": 3},
    {"extractor": "soft"},
    {"extractor": "mrae", "template": 1},
    {"extractor": "mrae", "template": 2},
    {"extractor": "mrae", "template": 3},
    {"extractor": "mrae", "template": 2, "mode": "spatial"},
    {"extractor": "concat"},
    {"extractor": "sum"},
    {"extractor": "fpn"},
]
@pytest.fixture
def exact_float32():
    """TF32 off for the CPU/CUDA comparisons: cuDNN convolutions use it by default (~1e-3 off)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("amp", [True, False])
@pytest.mark.parametrize("host", ["faster_rcnn", "retinanet", "fcos"])
def test_train_resume_eval_predict_export_on_cuda(host, amp, host_run_config, tiny_data, tmp_path):
    run = tmp_path / "run"
    train = ["train", "--config", str(host_run_config), "--out", str(run), f"model.detector={host}",
             "train.device=cuda", f"train.amp={str(amp).lower()}"]
    assert cli.main([*train, "train.steps=2"]) == 0
    assert cli.main([*train, "--resume"]) == 0
    losses = [r for r in read_metrics(run) if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    assert all(r["loss"] == r["loss"] and abs(r["loss"]) < 1e4 for r in losses)  # finite
    last = run / "checkpoints" / "last.pth"
    assert "cuda" in load_checkpoint(last)["rng"][0]  # the resume restored the GPU's RNG too

    for extra, name in [([], "metrics_val.json"), (["--slice", "48x64"], "metrics_val_slice48x64.json")]:
        out = tmp_path / f"eval{len(extra)}"
        assert cli.main(["eval", "--checkpoint", str(last), "--out", str(out), "--device", "cuda",
                         *extra]) == 0
        assert "AP" in json.loads((out / name).read_text())["metrics"]

    images = tiny_data / "images" / "val"
    for extra in ([], ["--slice", "48x64"]):
        out = tmp_path / f"pictures{len(extra)}"
        assert cli.main(["predict", "--checkpoint", str(last), str(images), "--out", str(out),
                         "--device", "cuda", "--score-thresh", "0.0", "--attention", *extra]) == 0
        assert len(list(out.glob("*.jpg"))) == 2

    onnx_file = tmp_path / "model.onnx"  # a checkpoint trained on CUDA exports on the CPU
    if host == "faster_rcnn" and amp:
        pytest.importorskip("onnxruntime")
        assert cli.main(["export", "--checkpoint", str(last), "--out", str(onnx_file)]) == 0
        out = tmp_path / "eval_onnx"
        assert cli.main(["eval", "--checkpoint", str(onnx_file), "--out", str(out)]) == 0


@pytest.mark.parametrize("settings", EXTRACTORS, ids=lambda s: "-".join(map(str, s.values())))
def test_extractor_maps_match_the_cpu(settings, exact_float32):
    from mrae.modeling.extractor_backbone import build_backbone

    torch.manual_seed(0)
    model = build_backbone(**settings, out_channels=32).eval()
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        on_cpu = model(images)
        on_gpu = model.cuda()(images.cuda())
    assert list(on_cpu) == list(on_gpu)
    for name, value in on_cpu.items():
        torch.testing.assert_close(on_gpu[name].cpu(), value, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize("host", ["retinanet", "fcos"])
def test_one_stage_losses_with_ignore_regions_match_the_cpu(host, exact_float32):
    """The one-stage losses have no random sampling, so the CPU and CUDA give the same numbers,
    ignore regions included (anchors / points inside one are neither positive nor negative)."""
    from mrae.modeling.detector import build_detector

    torch.manual_seed(0)
    model = build_detector(detector=host, extractor="mrae", num_classes=3, out_channels=32,
                           min_size=96, max_size=128).train()
    images = [torch.rand(3, 96, 128), torch.rand(3, 96, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 26.0], [60.0, 40.0, 72.0, 52.0]]),
                "labels": torch.tensor([1, 2]), "ignore_boxes": torch.tensor([[90.0, 60.0, 120.0, 90.0]])},
               {"boxes": torch.tensor([[5.0, 50.0, 25.0, 70.0]]), "labels": torch.tensor([2]),
                "ignore_boxes": torch.zeros(0, 4)}]
    on_cpu = model(images, targets)
    model.cuda()
    on_gpu = model([i.cuda() for i in images], [{k: v.cuda() for k, v in t.items()} for t in targets])
    assert set(on_cpu) == set(on_gpu)
    for name, value in on_cpu.items():
        torch.testing.assert_close(on_gpu[name].cpu(), value, rtol=1e-3, atol=1e-5, msg=name)
