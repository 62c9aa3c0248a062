"""Every extractor on real ResNet levels of every depth at odd input sizes."""

from __future__ import annotations

import functools

import pytest
import torch

from mrae.modeling.backbone import RESNET_DEPTHS, ResNetLevels
from mrae.modeling.extractors import EXTRACTORS

# The large size on the cheapest depth only, to keep the test fast.
DEPTH_SIZES = [(d, s) for d in RESNET_DEPTHS for s in ((97, 131), (33, 47))] + [("resnet18", (301, 513))]
CASES = [
    ("single", dict(level=1)),
    ("single", dict(level=2)),
    ("single", dict(level=3)),
    ("soft", dict(out_channels=48)),
    ("mrae", dict(out_channels=48, template=1)),
    ("mrae", dict(out_channels=48, template=3, mode="spatial", upsample="nearest")),
    ("concat", dict(out_channels=48)),
    ("sum", dict(out_channels=48, upsample="nearest")),
    ("fpn", dict(out_channels=48)),
]


@functools.cache
def levels_of(depth: str, size: tuple[int, int]):
    torch.manual_seed(0)
    body = ResNetLevels(depth).eval()
    with torch.no_grad():
        return body.channels, body(torch.rand(2, 3, *size))


@pytest.mark.parametrize(("depth", "size"), DEPTH_SIZES)
def test_every_extractor_output_shape(depth, size):
    channels, levels = levels_of(depth, size)
    h1, w1 = levels["c1"].shape[-2:]
    for name, kwargs in CASES:
        torch.manual_seed(0)
        extractor = EXTRACTORS[name](channels, **kwargs).eval()
        with torch.no_grad():
            out = extractor(levels)
        if name == "single":
            key = f"c{kwargs['level']}"
            assert list(out) == ["0"] and out["0"] is levels[key]
            assert extractor.out_channels == channels[key]
        elif name == "fpn":
            assert list(out) == ["0", "1", "2", "pool"]
            for i, k in enumerate(("c1", "c2", "c3")):
                assert out[str(i)].shape == (2, 48, *levels[k].shape[-2:])
            assert out["pool"].shape[1] == 48
        else:
            assert list(out) == ["0"]
            assert out["0"].shape == (2, 48, h1, w1), name
            assert extractor.out_channels == 48
        if name in ("soft", "mrae"):
            spatial = kwargs.get("mode") == "spatial"
            assert extractor.attention.shape == ((2, 3, h1, w1) if spatial else (2, 3))
