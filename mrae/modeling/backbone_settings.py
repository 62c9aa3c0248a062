"""The settings of the backbone every host reads (ResNet levels + extractor), declared once
(:mod:`mrae.modeling.settings`). Torch-free: the config's ``model`` section is derived from it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mrae.choices import BACKBONE_NAMES, NORM_CHOICES
from mrae.modeling.settings import Rule, at_least, setting


def _trunk_file(value: object) -> bool:
    return isinstance(value, str | os.PathLike) and bool(str(value))


@dataclass(frozen=True)
class BackboneSettings:
    """The ResNet trunk and the width of the extractor's maps (``model.<key>``)."""

    backbone: str = setting("resnet18", "the ResNet trunk", choices=BACKBONE_NAMES)
    pretrained: str | None = setting(
        None, "the trunk's start: null (random), imagenet, a state-dict file; in a config also "
        "synthetic or dataset (mrae pretrain's cached trunk)",
        rule=Rule(_trunk_file, "imagenet, synthetic, dataset or the path of a state-dict file"),
        nullable=True)
    trainable_layers: int | None = setting(
        None, "ResNet stages that train, counted from conv5_x (torchvision's rule); null: 3 with "
        "trained weights, 5 (all) from scratch",
        rule=Rule(lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 5,
                  "an integer in 0..5"), nullable=True)
    norm: str = setting("auto", "auto: frozen batch norm with trained weights, batch norm from "
                        "scratch; groupnorm: GroupNorm, from scratch only", choices=NORM_CHOICES)
    out_channels: int = setting(256, "width of the extractor's maps (single: the level's own "
                                "width, this is not read)", rule=at_least(1))
