"""`concat` and `sum`: the two attention-free fusions of the paper's Fig. 2."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from mrae.modeling.extractors._common import (
    LEVEL_NAMES,
    LevelFusion,
    project,
    upsample_to,
)


class ConcatFusion(LevelFusion):
    """Upsample C2, C3 to C1's grid, concatenate with C1, 1x1 conv to out_channels.

    forward(levels) -> OrderedDict {"0": [N, out_channels, H1, W1]} (stride 4).

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> concat = ConcatFusion({"c1": 8, "c2": 16, "c3": 32}, out_channels=4)
    >>> for name, x in concat(levels).items():
    ...     print(name, tuple(x.shape), concat.output_shape()[name])
    0 (2, 4, 24, 32) ShapeSpec(channels=4, stride=4)
    """

    def __init__(
        self, channels: dict[str, int], out_channels: int = 256, upsample: str = "bilinear"
    ) -> None:
        super().__init__(channels, out_channels, upsample)
        self.fuse = nn.Conv2d(sum(channels.values()), out_channels, kernel_size=1)

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        size = levels["c1"].shape[-2:]
        stacked = torch.cat([upsample_to(levels[k], size, self.upsample) for k in LEVEL_NAMES], 1)
        return OrderedDict([("0", self.fuse(stacked))])


class SumFusion(LevelFusion):
    """1x1-conv each level to out_channels (identity where widths match), upsample, add.

    forward(levels) -> OrderedDict {"0": [N, out_channels, H1, W1]} (stride 4).

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> summed = SumFusion({"c1": 8, "c2": 16, "c3": 32}, out_channels=4)
    >>> for name, x in summed(levels).items():
    ...     print(name, tuple(x.shape), summed.output_shape()[name])
    0 (2, 4, 24, 32) ShapeSpec(channels=4, stride=4)
    """

    def __init__(
        self, channels: dict[str, int], out_channels: int = 256, upsample: str = "bilinear"
    ) -> None:
        super().__init__(channels, out_channels, upsample)
        self.proj = nn.ModuleList(project(channels[k], out_channels) for k in LEVEL_NAMES)

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        size = levels["c1"].shape[-2:]
        out = sum(
            upsample_to(p(levels[k]), size, self.upsample)
            for p, k in zip(self.proj, LEVEL_NAMES, strict=True)
        )
        return OrderedDict([("0", out)])
