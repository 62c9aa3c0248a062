"""`single` level k: the paper's hard-attention baselines, one ResNet level used as is."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from mrae.errors import ConfigError
from mrae.modeling.extractor_settings import SingleSettings
from mrae.modeling.extractors._common import check_levels
from mrae.modeling.shapes import LEVEL_STRIDES, ShapeSpec


class SingleLevel(nn.Module):
    """Pass one level through unchanged.

    Args:
        channels: level widths, {"c1": .., "c2": .., "c3": ..} (ResNetLevels.channels).
        level: 1, 2 or 3 (C1 stride 4, C2 stride 8, C3 stride 16).

    forward(levels) -> OrderedDict {"0": levels[f"c{level}"]}; out_channels = that level's width.

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> single = SingleLevel({"c1": 8, "c2": 16, "c3": 32}, level=2)
    >>> for name, x in single(levels).items():
    ...     print(name, tuple(x.shape), single.output_shape()[name])
    0 (2, 16, 12, 16) ShapeSpec(channels=16, stride=8)
    """

    @classmethod
    def from_settings(cls, channels: dict[str, int], out_channels: int, settings: SingleSettings) -> SingleLevel:
        """The registered builder: the level of ``settings`` (``out_channels`` is not read: the
        level keeps its width)."""
        return cls(channels, level=settings.level)

    def __init__(self, channels: dict[str, int], level: int = 1) -> None:
        super().__init__()
        check_levels(channels)
        if isinstance(level, bool) or level not in (1, 2, 3):
            raise ConfigError(f"level={level!r} is not valid; choose one of: 1, 2, 3")
        self.level = level
        self.key = f"c{level}"
        self.out_channels = channels[self.key]

    def output_shape(self) -> dict[str, ShapeSpec]:
        """{"0": ShapeSpec(the level's width, its stride)}."""
        return {"0": ShapeSpec(self.out_channels, LEVEL_STRIDES[self.key])}

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", levels[self.key])])

    def extra_repr(self) -> str:
        return f"level={self.level}, out_channels={self.out_channels}"
