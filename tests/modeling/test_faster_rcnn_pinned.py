"""Faster R-CNN stays bit-identical through the builder's refactoring (issue 18): for the same seed,
the same parameters (a sha256 over the state dict, recorded with the builder before the refactoring)
and the same outputs (losses and detections equal to those of a frozen copy of that builder)."""

from __future__ import annotations

import hashlib

import pytest
import torch
from _legacy_builder import legacy_build_detector

from mrae.modeling.detector import build_detector

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = dict(backbone="resnet18", num_classes=3, min_size=64, max_size=96, out_channels=16,
            trainable_layers=5, rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=50,
            box_score_thresh=0.0)
CASES = {
    "mrae-mlp": dict(extractor="mrae", template=2),
    "single-c4": dict(extractor="single", level=2, head="c4"),
    "fpn-mlp": dict(extractor="fpn"),
}
# sha256 of the state dicts of build_detector(**TINY, **case) after torch.manual_seed(0), recorded
# with the one-function builder of commit eeb5a0c (before hosts and build_backbone).
PINNED = {
    "mrae-mlp": "b527d55537bcd0b54721f7a1c37f463e85936f91e7ae42034217fc529026c4c1",
    "single-c4": "6ecab25bfdebbb9c38c621638b839cdeecff22bfa688d45851afc1cacb09b0d4",
    "fpn-mlp": "48f0d53b31a50d33f28db062a725c9dfbbe67722b20a4fafbfe6bdb185d2f51d",
}


def state_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
        digest.update(value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def built(builder, case: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return builder(**TINY, **CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_parameters_are_pinned(case):
    assert state_digest(built(build_detector, case)) == PINNED[case]


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_equal_the_former_builder(case):
    image = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(1))
    target = {"boxes": torch.tensor([[10.0, 12.0, 30.0, 28.0]]), "labels": torch.tensor([1])}
    results = []
    for builder in (build_detector, legacy_build_detector):
        model = built(builder, case)
        torch.manual_seed(2)
        losses = model.train()([image], [dict(target)])
        detections = model.eval()([image])[0]
        results.append((losses, detections))
    (new_losses, new_det), (old_losses, old_det) = results
    assert list(new_losses) == list(old_losses)
    for key in old_losses:
        assert torch.equal(new_losses[key], old_losses[key]), key
    for key in old_det:
        assert torch.equal(new_det[key], old_det[key]), key
