"""`fpn`: torchvision's FeaturePyramidNetwork over C1..C3 (paper Fig. 1(d)), the usual peer."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from mrae.modeling.extractors._common import LEVEL_NAMES, check_levels, check_out_channels

FPN_MAPS = ("0", "1", "2", "pool")
FPN_ROI_MAPS = ("0", "1", "2")


class FPNExtractor(nn.Module):
    """Top-down pyramid over C1..C3 with an extra max-pooled level.

    forward(levels) -> OrderedDict {"0": stride 4, "1": stride 8, "2": stride 16, "pool": stride 32},
    each [N, out_channels, ., .]. The detector pools RoIs from "0".."2" (MultiScaleRoIAlign picks
    the level that fits each box) and puts one anchor size on each of the four maps.
    """

    def __init__(self, channels: dict[str, int], out_channels: int = 256) -> None:
        super().__init__()
        check_levels(channels)
        self.out_channels = check_out_channels(out_channels)
        self.fpn = FeaturePyramidNetwork(
            [channels[k] for k in LEVEL_NAMES], out_channels, extra_blocks=LastLevelMaxPool()
        )

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        return self.fpn(OrderedDict((str(i), levels[k]) for i, k in enumerate(LEVEL_NAMES)))
