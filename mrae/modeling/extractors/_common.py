"""Pieces the single-map extractors share: upsampling to C1's grid and 1x1 projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mrae.choices import UPSAMPLE_MODES
from mrae.errors import ConfigError
from mrae.modeling.extractor_settings import UpsampleSettings
from mrae.modeling.settings import as_dict
from mrae.modeling.shapes import LEVEL_STRIDES, ShapeSpec

LEVEL_NAMES = ("c1", "c2", "c3")
assert tuple(LEVEL_STRIDES) == LEVEL_NAMES


def check_upsample(mode: str) -> str:
    if mode not in UPSAMPLE_MODES:
        raise ConfigError(
            f"upsample={mode!r} is not valid; choose one of: {', '.join(map(repr, UPSAMPLE_MODES))}"
        )
    return mode


def check_out_channels(out_channels: int) -> int:
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise ConfigError(f"out_channels={out_channels!r} is not valid; give a positive integer")
    return out_channels


def check_levels(channels: dict[str, int]) -> None:
    if tuple(channels) != LEVEL_NAMES:
        raise ConfigError(f"channels must name the levels {LEVEL_NAMES} in order, got {tuple(channels)}")


def upsample_to(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize x [N, C, h, w] to exactly `size` = (H, W) (a no-op when it already has that size).

    The exact size matters: C2/C3 of an odd input are not 2x/4x smaller than C1, e.g. C1 25x33,
    C2 13x17, C3 7x9 for a 97x131 image.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def adaptive_avg_pool2d(x: Tensor, size: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, size)``; while exporting to ONNX the same bins (row ``i`` of
    ``size`` spans ``floor(i H / size)`` to ``ceil((i + 1) H / size)``) from an integral image, so
    that the exported graph computes them for any input size (the exporter fixes an adaptive
    pool's kernel to the example's size)."""
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, size)
    integral = F.pad(x.cumsum(-1).cumsum(-2), (1, 0, 1, 0))  # [N, C, H + 1, W + 1]
    shape = torch._shape_as_tensor(x)
    index = torch.arange(size, device=x.device)

    def bins(length: Tensor) -> tuple[Tensor, Tensor]:
        start = torch.div(index * length, size, rounding_mode="floor")
        end = torch.div((index + 1) * length + size - 1, size, rounding_mode="floor")
        return start, end

    y0, y1 = bins(shape[-2])
    x0, x1 = bins(shape[-1])
    top, bottom = integral.index_select(-2, y0), integral.index_select(-2, y1)
    total = (bottom.index_select(-1, x1) - bottom.index_select(-1, x0)
             - top.index_select(-1, x1) + top.index_select(-1, x0))
    area = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).to(x.dtype)
    return total / area


def project(in_channels: int, out_channels: int) -> nn.Module:
    """1x1 conv from in_channels to out_channels, or the identity when they are equal.

    The identity follows the paper: with out_channels = C3's width (1024 for ResNet-50/101) C3 is
    used as is and only the shallower levels get a 1x1 conv.
    """
    if in_channels == out_channels:
        return nn.Identity()
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class LevelFusion(nn.Module):
    """Base of the extractors that fuse C1..C3 into one map on C1's grid (soft, mrae, concat,
    sum): checks the level widths, keeps `out_channels` and the upsampling mode, and describes
    the one map {"0": out_channels wide, stride 4}."""

    def __init__(self, channels: dict[str, int], out_channels: int, upsample: str) -> None:
        super().__init__()
        check_levels(channels)
        self.out_channels = check_out_channels(out_channels)
        self.upsample = check_upsample(upsample)

    @classmethod
    def from_settings(cls, channels: dict[str, int], out_channels: int, settings: UpsampleSettings) -> LevelFusion:
        """The registered builder (:mod:`mrae.modeling.registry`): ``cls`` with the keys its
        settings declare (``upsample``; MRAE's own too)."""
        return cls(channels, out_channels=out_channels, **as_dict(settings))

    def output_shape(self) -> dict[str, ShapeSpec]:
        """{"0": ShapeSpec(out_channels, 4)}: the fused map, on C1's grid."""
        return {"0": ShapeSpec(self.out_channels, LEVEL_STRIDES["c1"])}
