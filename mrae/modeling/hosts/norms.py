"""The norm layer of the one-stage hosts' head towers (FCOS always, RetinaNet with
``head_norm: group``)."""

from __future__ import annotations

import math

from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm in 32 groups (torchvision's FCOS and RetinaNet v2), or in the largest count that
    divides ``channels`` (torchvision fixes 32 groups, which narrow test models do not divide)."""
    return nn.GroupNorm(math.gcd(32, channels), channels)
