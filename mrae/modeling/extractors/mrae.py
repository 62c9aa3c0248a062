"""`mrae`: the MultiResolution Attention Extractor (paper section 3.2) and its spatial extension.

Global mode (the paper), template t in {1, 2, 3}:

    v_i = fc_i(flatten(avgpool_{PxP}(e_i(C_i))))   e_i: 1x1 conv to `embed_channels`, fc_i -> `embed_dim`
    D_i = cos(v_t, v_i), with D_t = 1 exactly
    a   = softmax(D) over the three levels, per image               -> attention [N, 3]
    A   = sum_i a_i * up(p_i(C_i))                                  p_i: 1x1 conv to out_channels

Spatial mode (ours): the same cosine at every position of C1's grid between the 1x1-conv
embeddings e_i(C_i) upsampled there, softmax over levels per position -> attention [N, 3, H1, W1].

Every level owns its embedding network whatever the template, so the parameters do not depend on
the template: a template-1 checkpoint loads into a template-2 model (the paper's mixed training).
Cosines lie in [-1, 1], so a level can be favoured by at most e^2; `learn_temperature=True` adds a
learned scale on D (off by default, as in the paper).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mrae.choices import MRAE_MODES
from mrae.errors import ConfigError
from mrae.modeling.extractors._common import (
    LEVEL_NAMES,
    LevelFusion,
    adaptive_avg_pool2d,
    project,
    upsample_to,
)


class MRAE(LevelFusion):
    """Attention over C1..C3 from the cosine similarity of each level to a template level.

    Args:
        channels: level widths {"c1", "c2", "c3"} (ResNetLevels.channels).
        out_channels: width of the output map.
        template: 1, 2 or 3, the level every other level is compared with.
        mode: "global" (per-image weights, the paper) or "spatial" (per-position weights).
        embed_channels: width of the 1x1-conv embedding e_i.
        pool_size: P, the fixed grid the embedding is average-pooled to (global mode), so the fc
            accepts any input size.
        embed_dim: length of the vectors v_i (global mode).
        learn_temperature: multiply D by a learned positive scale exp(log_temperature), init 1.
        upsample: "bilinear" or "nearest", to C1's exact size.

    forward(levels) -> OrderedDict {"0": A [N, out_channels, H1, W1]} (stride 4).
    After each forward `attention` holds the weights, detached: [N, 3] (global) or
    [N, 3, H1, W1] (spatial), summing to 1 over dim 1.

    Example, on the levels of a 96 x 128 image (channels and strides as ``output_shape()`` says):

    >>> import torch
    >>> levels = {"c1": torch.rand(2, 8, 24, 32), "c2": torch.rand(2, 16, 12, 16),
    ...           "c3": torch.rand(2, 32, 6, 8)}
    >>> mrae = MRAE({"c1": 8, "c2": 16, "c3": 32}, out_channels=4, template=2)
    >>> for name, x in mrae(levels).items():
    ...     print(name, tuple(x.shape), mrae.output_shape()[name])
    0 (2, 4, 24, 32) ShapeSpec(channels=4, stride=4)
    >>> tuple(mrae.attention.shape)  # one weight per image and level
    (2, 3)
    >>> spatial = MRAE({"c1": 8, "c2": 16, "c3": 32}, out_channels=4, mode="spatial")
    >>> tuple(spatial(levels)["0"].shape), tuple(spatial.attention.shape)  # per position of C1
    ((2, 4, 24, 32), (2, 3, 24, 32))
    """

    def __init__(
        self,
        channels: dict[str, int],
        out_channels: int = 256,
        template: int = 2,
        mode: str = "global",
        embed_channels: int = 64,
        pool_size: int = 4,
        embed_dim: int = 256,
        learn_temperature: bool = False,
        upsample: str = "bilinear",
    ) -> None:
        super().__init__(channels, out_channels, upsample)
        if mode not in MRAE_MODES:
            raise ConfigError(
                f"mode={mode!r} is not valid; choose one of: {', '.join(map(repr, MRAE_MODES))}"
            )
        self.mode = mode
        self.template = template  # validated by the property setter
        self.embed = nn.ModuleList(
            nn.Conv2d(channels[k], embed_channels, kernel_size=1) for k in LEVEL_NAMES
        )
        self.pool_size = pool_size
        if mode == "global":
            self.fc = nn.ModuleList(
                nn.Linear(embed_channels * pool_size * pool_size, embed_dim) for _ in LEVEL_NAMES
            )
        else:
            self.fc = None
        self.proj = nn.ModuleList(project(channels[k], out_channels) for k in LEVEL_NAMES)
        self.log_temperature = nn.Parameter(torch.zeros(())) if learn_temperature else None
        self.attention: Tensor | None = None

    @property
    def template(self) -> int:
        return self._template

    @template.setter
    def template(self, value: int) -> None:
        # A setter, so that mixed training can switch the template of a loaded model.
        if isinstance(value, bool) or value not in (1, 2, 3):
            raise ConfigError(f"template={value!r} is not valid; choose one of: 1, 2, 3")
        self._template = value

    def similarities(self, levels: dict[str, Tensor]) -> Tensor:
        """D: cosine of each level to the template, [N, 3] (global) or [N, 3, H1, W1] (spatial).

        The template's own entry is exactly 1.
        """
        feats = [levels[k] for k in LEVEL_NAMES]
        t = self.template - 1
        if self.mode == "global":
            vectors = [
                fc(adaptive_avg_pool2d(e(x), self.pool_size).flatten(1))
                for e, fc, x in zip(self.embed, self.fc, feats, strict=True)
            ]
        else:
            size = feats[0].shape[-2:]
            vectors = [
                upsample_to(e(x), size, self.upsample) for e, x in zip(self.embed, feats, strict=True)
            ]
        # vectors: [N, embed_dim] or [N, embed_channels, H1, W1]; the cosine is over dim 1.
        sims = [
            torch.ones_like(vectors[t][:, 0]) if i == t else F.cosine_similarity(vectors[t], v, dim=1)
            for i, v in enumerate(vectors)
        ]
        return torch.stack(sims, dim=1)

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        feats = [levels[k] for k in LEVEL_NAMES]
        logits = self.similarities(levels)
        if self.log_temperature is not None:
            logits = logits * self.log_temperature.exp()
        weights = logits.softmax(dim=1)
        if weights.dim() == 2:
            weights_map = weights[:, :, None, None, None]  # [N, 3, 1, 1, 1]
        else:
            weights_map = weights[:, :, None]  # [N, 3, 1, H1, W1]
        size = feats[0].shape[-2:]
        # p_i before the upsample: a 1x1 conv commutes with interpolation and is cheaper at low res.
        out = sum(
            weights_map[:, i] * upsample_to(p(x), size, self.upsample)
            for i, (p, x) in enumerate(zip(self.proj, feats, strict=True))
        )
        self.attention = weights.detach()
        return OrderedDict([("0", out)])

    def extra_repr(self) -> str:
        return f"template={self.template}, mode={self.mode!r}, out_channels={self.out_channels}"
