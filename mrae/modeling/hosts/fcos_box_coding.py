"""How FCOS's regression head turns its raw outputs into the four box distances it predicts.

FCOS predicts, at each point, the distances (left, top, right, bottom) from the point to the box's
sides, in units of the map's stride (torchvision's ``BoxLinearCoder(normalize_by_size=True)``).
They must be positive, and the raw conv outputs ``x`` are made so in one of two ways
(``box_coding``, :data:`mrae.choices.FCOS_BOX_CODINGS`):

- ``"exp"``: ``exp(s_l * x)`` with one learnable scale ``s_l`` per map level
  (starting at 1), the FCOS paper's (Tian et al., 2019, section 3.1). Its gradient
  ``s_l * exp(s_l * x)`` is never zero: a box pushed far too small still gets a push back.
- ``"relu"``: ``relu(x)``, torchvision's ``FCOSRegressionHead``. An output that falls below zero
  gets no gradient at all; when every output of the positives has fallen there, the boxes are
  points for good (GIoU loss 1.0 from then on: how FCOS MRAE template 2 seed 1 of the host study
  died). The runs made before ``box_coding`` existed used it.

The scales are a parameter ``scales`` [levels] of the head only with ``"exp"``: a ``"relu"``
head's state dict is torchvision's, key for key.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.detection.fcos import FCOSRegressionHead

from mrae.choices import FCOS_BOX_CODINGS
from mrae.errors import ConfigError


def check_box_coding(box_coding: object) -> str:
    """``box_coding`` when it is one of :data:`mrae.choices.FCOS_BOX_CODINGS`, else a one-line
    :class:`~mrae.errors.ConfigError` naming the key and the choices."""
    if not isinstance(box_coding, str) or box_coding not in FCOS_BOX_CODINGS:
        choices = ", ".join(repr(c) for c in FCOS_BOX_CODINGS)
        raise ConfigError(f"model.fcos.box_coding={box_coding!r} is not valid; choose one of: {choices}")
    return box_coding


class CodedFCOSRegressionHead(FCOSRegressionHead):
    """torchvision's FCOS regression head (4 convs with ``norm_layer``, then a box conv and a
    centre-ness conv), its box outputs made positive by ``box_coding`` (``"exp"`` or ``"relu"``,
    see the module's docstring).

    Args:
        in_channels: the width of every map.
        num_anchors: points per map position (1).
        num_levels: the maps the head is run on (one scale each with ``"exp"``).
        box_coding: ``"exp"`` or ``"relu"``.
        norm_layer: the norm after each of the tower's convs (``channels -> module``).
    """

    def __init__(self, in_channels: int, num_anchors: int, num_levels: int, box_coding: str,
                 norm_layer: Callable[[int], nn.Module]) -> None:
        super().__init__(in_channels, num_anchors, norm_layer=norm_layer)
        self.box_coding = check_box_coding(box_coding)
        self.num_levels = num_levels
        if box_coding == "exp":
            self.scales = nn.Parameter(torch.ones(num_levels))

    def code(self, raw: Tensor, level: int) -> Tensor:
        """The distances [N, 4A, H, W] (strides, >= 0) from the box conv's raw outputs of map ``level``.
        ``"exp"`` computes in float32 (a float16 ``exp`` overflows from 11 up)."""
        if self.box_coding == "relu":
            return nn.functional.relu(raw)
        return torch.exp(self.scales[level].float() * raw.float())

    def forward(self, x: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Per map [N, C, H, W] of ``x``: the box distances and centre-ness logits of all maps,
        ([N, sum HWA, 4], [N, sum HWA, 1]), as torchvision's head lays them out."""
        if len(x) != self.num_levels:
            raise ValueError(f"the head was built for {self.num_levels} maps, given {len(x)}")
        all_bbox_regression = []
        all_bbox_ctrness = []
        for level, features in enumerate(x):
            bbox_feature = self.conv(features)
            bbox_regression = self.code(self.bbox_reg(bbox_feature), level)
            bbox_ctrness = self.bbox_ctrness(bbox_feature)
            n, _, h, w = bbox_regression.shape
            # (N, 4A, H, W) -> (N, HWA, 4) and (N, A, H, W) -> (N, HWA, 1), torchvision's order
            all_bbox_regression.append(bbox_regression.view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2)
                                       .reshape(n, -1, 4))
            all_bbox_ctrness.append(bbox_ctrness.view(n, -1, 1, h, w).permute(0, 3, 4, 1, 2)
                                    .reshape(n, -1, 1))
        return torch.cat(all_bbox_regression, dim=1), torch.cat(all_bbox_ctrness, dim=1)
