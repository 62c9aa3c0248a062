"""ONNX export parity (issue 18): each host exported with a dynamic image size and run by
onnxruntime gives PyTorch's raw outputs (the extractor's maps, boxes, labels, scores) to rtol
1e-3 / atol 1e-5 and its detections (every box above the score threshold matched by one of the
same label at IoU >= 0.99), on a blank image, a normal one and a size other than the traced one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from mrae.modeling.caps import set_detection_caps
from mrae.modeling.detector import build_detector
from mrae.modeling.onnx_export import SingleImageDetector, export_onnx, map_names

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SCORE_THRESH = 0.05
TINY = dict(extractor="mrae", template=2, backbone="resnet18", num_classes=3, min_size=96,
            max_size=128, out_channels=16, box_score_thresh=SCORE_THRESH, detections_per_class=1000,
            detections_per_img=1000)


def _scene(width: int, height: int) -> torch.Tensor:
    from mrae.data.synth_scene import render

    image, _ = render(0, "val", 0, width=width, height=height)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


IMAGES = {
    "blank": lambda: torch.zeros(3, 96, 128),
    "normal": lambda: _scene(128, 96),
    "other size": lambda: _scene(150, 70),
}


@pytest.fixture(scope="module", params=["faster_rcnn", "retinanet", "fcos", "faster_rcnn fpn"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    detector, _, extractor = request.param.partition(" ")
    # FPN: the RoIs pooled from four maps (mrae.modeling.roi_pool's export path)
    model = build_detector(**{**TINY, "extractor": extractor or TINY["extractor"]}, detector=detector).eval()
    if detector != "faster_rcnn":
        # a trained head's spread of scores: torchvision's initial head (std 0.01) gives nearly
        # every position the prior's score, and which of two candidates 1e-7 apart a cap keeps is
        # a tie-break, not the computation compared here
        for module in model.head.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight)
                torch.nn.init.zeros_(module.bias)
        torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, -1.0)
        model.topk_candidates = 10**5
        set_detection_caps(model, 10**5, 10**5)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx", example_size=(96, 128),
                       raw_maps=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return model, session


@pytest.mark.parametrize("image_name", list(IMAGES))
def test_onnxruntime_matches_pytorch(exported, image_name):
    model, session = exported
    image = IMAGES[image_name]()
    with torch.no_grad():
        expected = [t.numpy() for t in SingleImageDetector(model, raw_maps=True)(image)]
    names = ["boxes", "labels", "scores", *map_names(model)]
    got = session.run(names, {"image": image.numpy()})
    for name, want, have in zip(names, expected, got, strict=True):
        assert want.shape == have.shape, name
        if name.startswith("map_"):
            np.testing.assert_allclose(have, want, rtol=1e-3, atol=1e-5, err_msg=name)

    boxes, labels, scores = (torch.from_numpy(a) for a in expected[:3])
    onnx_boxes, onnx_labels, onnx_scores = (torch.from_numpy(a) for a in got[:3])
    assert len(boxes) > 0 or image_name == "blank"
    kept = scores >= SCORE_THRESH
    assert bool(kept.all()) and bool((onnx_scores >= SCORE_THRESH).all())
    if len(boxes) == 0:
        assert len(onnx_boxes) == 0
        return
    iou = box_iou(boxes, onnx_boxes)
    same = (labels[:, None] == onnx_labels[None, :]) & (iou >= 0.99)
    assert bool(same.any(1).all()), f"{int((~same.any(1)).sum())} PyTorch detections unmatched"
    assert bool(same.any(0).all()), f"{int((~same.any(0)).sum())} onnxruntime detections unmatched"
    best = torch.where(same, (scores[:, None] - onnx_scores[None, :]).abs(), torch.inf).amin(1)
    np.testing.assert_allclose(best.numpy(), 0.0, atol=1e-3)
