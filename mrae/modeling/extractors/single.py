"""`single` level k: the paper's hard-attention baselines, one ResNet level used as is."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from mrae.errors import ConfigError
from mrae.modeling.extractors._common import check_levels


class SingleLevel(nn.Module):
    """Pass one level through unchanged.

    Args:
        channels: level widths, {"c1": .., "c2": .., "c3": ..} (ResNetLevels.channels).
        level: 1, 2 or 3 (C1 stride 4, C2 stride 8, C3 stride 16).

    forward(levels) -> OrderedDict {"0": levels[f"c{level}"]}; out_channels = that level's width.
    """

    def __init__(self, channels: dict[str, int], level: int = 1) -> None:
        super().__init__()
        check_levels(channels)
        if isinstance(level, bool) or level not in (1, 2, 3):
            raise ConfigError(f"level={level!r} is not valid; choose one of: 1, 2, 3")
        self.level = level
        self.key = f"c{level}"
        self.out_channels = channels[self.key]

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", levels[self.key])])

    def extra_repr(self) -> str:
        return f"level={self.level}, out_channels={self.out_channels}"
