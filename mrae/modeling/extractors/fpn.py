"""`fpn`: torchvision's FeaturePyramidNetwork over C1..C3 (paper Fig. 1(d)), the usual peer."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from mrae.modeling.extractor_settings import ExtractorSettings
from mrae.modeling.extractors._common import LEVEL_NAMES, check_levels, check_out_channels
from mrae.modeling.shapes import LEVEL_STRIDES, ShapeSpec


class FPNExtractor(nn.Module):
    """Top-down pyramid over C1..C3 with an extra max-pooled level.

    forward(levels) -> OrderedDict {"0": stride 4, "1": stride 8, "2": stride 16, "pool": stride 32},
    each [N, out_channels, ., .]. The detector puts anchors on all four maps and pools RoIs from
    "0".."2" (torchvision's "pool" map feeds the RPN only; MultiScaleRoIAlign picks the map that
    fits each box).

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> fpn = FPNExtractor({"c1": 8, "c2": 16, "c3": 32}, out_channels=4)
    >>> for name, x in fpn(levels).items():
    ...     print(name, tuple(x.shape), fpn.output_shape()[name])
    0 (2, 4, 24, 32) ShapeSpec(channels=4, stride=4)
    1 (2, 4, 12, 16) ShapeSpec(channels=4, stride=8)
    2 (2, 4, 6, 8) ShapeSpec(channels=4, stride=16)
    pool (2, 4, 3, 4) ShapeSpec(channels=4, stride=32)
    """

    @classmethod
    def from_settings(cls, channels: dict[str, int], out_channels: int,
                      settings: ExtractorSettings) -> FPNExtractor:
        """The registered builder: ``out_channels`` wide maps (FPN reads no setting of its own)."""
        return cls(channels, out_channels=out_channels)

    def __init__(self, channels: dict[str, int], out_channels: int = 256) -> None:
        super().__init__()
        check_levels(channels)
        self.out_channels = check_out_channels(out_channels)
        self.fpn = FeaturePyramidNetwork(
            [channels[k] for k in LEVEL_NAMES], out_channels, extra_blocks=LastLevelMaxPool()
        )

    def output_shape(self) -> dict[str, ShapeSpec]:
        """{"0": stride 4, "1": 8, "2": 16, "pool": 32}, each out_channels wide."""
        shapes = {str(i): ShapeSpec(self.out_channels, LEVEL_STRIDES[k]) for i, k in enumerate(LEVEL_NAMES)}
        shapes["pool"] = ShapeSpec(self.out_channels, 2 * LEVEL_STRIDES[LEVEL_NAMES[-1]])
        return shapes

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        return self.fpn(OrderedDict((str(i), levels[k]) for i, k in enumerate(LEVEL_NAMES)))
