"""What a feature map looks like without running the network, as detectron2's ``ShapeSpec``.

The backbone and every extractor describe their output with ``output_shape() -> {name: ShapeSpec}``,
in the order forward returns the maps; :func:`mrae.modeling.detector.build_detector` sets up the
anchors and the RoI pooling from that description. A map of stride s on an H x W input is
[N, channels, ceil(H / s), ceil(W / s)].

>>> ShapeSpec(channels=256, stride=4)
ShapeSpec(channels=256, stride=4)
>>> LEVEL_STRIDES
{'c1': 4, 'c2': 8, 'c3': 16}
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShapeSpec:
    """One feature map: its width (channels) and its stride (input pixels per map cell)."""

    channels: int
    stride: int


#: The strides of the ResNet levels the extractors read (C1 = conv2_x .. C3 = conv4_x).
LEVEL_STRIDES: dict[str, int] = {"c1": 4, "c2": 8, "c3": 16}
