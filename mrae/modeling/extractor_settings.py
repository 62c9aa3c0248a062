"""Each extractor's settings, declared once (:mod:`mrae.modeling.settings`); the extractors are
registered with theirs in :mod:`mrae.modeling.registry`. A key lives flat in the config's
``model`` section; it applies to the extractors whose settings declare it, and any other
extractor refuses a value other than its default. Torch-free, so that configs load without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrae.choices import LEVEL_CHOICES, MRAE_MODES, UPSAMPLE_MODES
from mrae.modeling.settings import Rule, at_least, setting


@dataclass(frozen=True)
class ExtractorSettings:
    """An extractor that reads no setting of its own (``fpn``): the base of the others."""


@dataclass(frozen=True)
class SingleSettings(ExtractorSettings):
    """``single``: one ResNet level as it is (the paper's hard-attention baselines)."""

    level: int = setting(1, "the level: 1 (C1, stride 4), 2 (C2, stride 8), 3 (C3, stride 16)",
                         choices=LEVEL_CHOICES)


@dataclass(frozen=True)
class UpsampleSettings(ExtractorSettings):
    """Extractors that bring C2 and C3 to C1's grid (``soft``, ``concat``, ``sum``, ``mrae``)."""

    upsample: str = setting("bilinear", "how C2 and C3 reach C1's grid", choices=UPSAMPLE_MODES)


@dataclass(frozen=True)
class MraeSettings(UpsampleSettings):
    """``mrae``: attention from the cosine similarity of each level to a template level."""

    template: int = setting(2, "the template level (1, 2 or 3)", choices=LEVEL_CHOICES)
    mode: str = setting("global", "global: one weight per level and image (the paper); spatial: "
                        "one weight per position", choices=MRAE_MODES)
    learn_temperature: bool = setting(False, "learn a scale on the cosine similarities",
                                      rule=Rule(lambda v: isinstance(v, bool), "true or false"))
    embed_channels: int = setting(64, "width of each level's 1x1-conv embedding", rule=at_least(1))
    pool_size: int = setting(4, "global mode: the P x P grid the embedding is average-pooled to",
                             rule=at_least(1))
    embed_dim: int = setting(256, "global mode: length of the vectors whose cosines give the "
                             "attention", rule=at_least(1))
