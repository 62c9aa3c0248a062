"""Every extractor on real ResNet levels of every depth at odd input sizes; what `output_shape()`
says is what forward returns."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from mrae.modeling import registry
from mrae.modeling.backbone import RESNET_DEPTHS, ResNetLevels
from mrae.modeling.extractor_backbone import build_extractor
from mrae.modeling.settings import make_settings

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
        levels = body(torch.rand(2, 3, *size))
    assert_described(levels, body.output_shape(), size)
    return body.channels, levels


def assert_described(maps, shapes, size: tuple[int, int]) -> None:
    """`maps` (name -> [N, C, h, w]) are the ones `shapes` (name -> ShapeSpec) describes, in order,
    on an input of `size` (H, W): C = channels, h = ceil(H / stride), w = ceil(W / stride)."""
    assert list(maps) == list(shapes)
    for name, x in maps.items():
        spec = shapes[name]
        expected = (spec.channels, *(math.ceil(n / spec.stride) for n in size))
        assert tuple(x.shape[1:]) == expected, (name, spec, tuple(x.shape))


@pytest.mark.parametrize(("depth", "size"), DEPTH_SIZES)
def test_every_extractor_output_shape(depth, size):
    channels, levels = levels_of(depth, size)
    h1, w1 = levels["c1"].shape[-2:]
    for name, kwargs in CASES:
        torch.manual_seed(0)
        settings = make_settings(registry.EXTRACTORS[name].settings, kwargs)
        extractor = build_extractor(name, channels, kwargs.get("out_channels", 256), settings).eval()
        with torch.no_grad():
            out = extractor(levels)
        assert_described(out, extractor.output_shape(), size)
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
