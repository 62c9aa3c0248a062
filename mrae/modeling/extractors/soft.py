"""`soft`: the paper's soft attention over levels (section 3.1), implemented as written.

    s_i = max_{x,y} f_i(C_i)      f_i: 1x1 conv to one channel, then global max pool
    a   = softmax(s) over the three levels, per image
    A   = sum_i a_i * up(g_i(C_i))  g_i: 1x1 conv to out_channels (identity where widths match)

The paper reports this variant barely learns (AP 0.01-0.04); it is kept faithful on purpose.
"""

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


class SoftAttention(LevelFusion):
    """Per-image softmax weights over C1..C3 from a global max of a 1x1 conv of each level.

    Args:
        channels: level widths {"c1", "c2", "c3"} (ResNetLevels.channels).
        out_channels: width of the output map.
        upsample: "bilinear" or "nearest", to C1's exact size.

    forward(levels) -> OrderedDict {"0": A [N, out_channels, H1, W1]} (stride 4).
    After each forward `attention` holds the weights a, detached: Tensor [N, 3] (rows sum to 1).

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> soft = SoftAttention({"c1": 8, "c2": 16, "c3": 32}, out_channels=4)
    >>> for name, x in soft(levels).items():
    ...     print(name, tuple(x.shape), soft.output_shape()[name])
    0 (2, 4, 24, 32) ShapeSpec(channels=4, stride=4)
    >>> tuple(soft.attention.shape)
    (2, 3)
    """

    def __init__(
        self, channels: dict[str, int], out_channels: int = 256, upsample: str = "bilinear"
    ) -> None:
        super().__init__(channels, out_channels, upsample)
        self.score = nn.ModuleList(nn.Conv2d(channels[k], 1, kernel_size=1) for k in LEVEL_NAMES)
        self.proj = nn.ModuleList(project(channels[k], out_channels) for k in LEVEL_NAMES)
        self.attention: Tensor | None = None

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        feats = [levels[k] for k in LEVEL_NAMES]
        scores = torch.stack([f(x).amax(dim=(1, 2, 3)) for f, x in zip(self.score, feats, strict=True)], 1)
        weights = scores.softmax(dim=1)  # [N, 3]
        size = feats[0].shape[-2:]
        # g_i before the upsample: a 1x1 conv commutes with interpolation and is cheaper at low res.
        out = sum(
            weights[:, i, None, None, None] * upsample_to(g(x), size, self.upsample)
            for i, (g, x) in enumerate(zip(self.proj, feats, strict=True))
        )
        self.attention = weights.detach()
        return OrderedDict([("0", out)])
