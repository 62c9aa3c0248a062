"""The backbone every host reads: ResNet levels C1..C3 followed by an extractor.

:func:`build_backbone` returns it alone, for torchvision's own detector classes (or any detector
that takes a backbone with ``out_channels`` and an ``OrderedDict`` of maps):

>>> import torch
>>> from torchvision.models.detection import FCOS
>>> from torchvision.models.detection.anchor_utils import AnchorGenerator
>>> from mrae.modeling.extractor_backbone import build_backbone
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> backbone = build_backbone(extractor="mrae", template=2, backbone="resnet18", out_channels=32)
>>> backbone.output_shape()
{'0': ShapeSpec(channels=32, stride=4)}
>>> model = FCOS(backbone, num_classes=3, min_size=96, max_size=128,
...              anchor_generator=AnchorGenerator(((4,),), ((1.0,),))).eval()
>>> detections = model([torch.rand(3, 96, 128)])
>>> sorted(detections[0])
['boxes', 'labels', 'scores']
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from torch import Tensor, nn

from mrae.choices import out_of_scope
from mrae.errors import ConfigError
from mrae.modeling.backbone import ResNetLevels
from mrae.modeling.extractors import EXTRACTORS
from mrae.modeling.shapes import ShapeSpec

#: What ``extractor`` may be: a name of :data:`EXTRACTORS`, a module that takes the levels, or a
#: function from the levels' widths ({"c1", "c2", "c3"} -> channels) to such a module.
ExtractorSpec = str | nn.Module | Callable[[dict[str, int]], nn.Module]


class ExtractorBackbone(nn.Module):
    """A detector's `backbone`: ResNet levels followed by an extractor.

    forward(images: Tensor[N, 3, H, W]) -> the extractor's OrderedDict of maps, as its
    `output_shape()` describes them; `out_channels` is their one width (torchvision's RPN head
    and box heads take a single width).
    """

    def __init__(self, body: ResNetLevels, extractor: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.extractor = extractor
        if not callable(getattr(extractor, "output_shape", None)):
            raise ConfigError("model.extractor: the module given has no output_shape(); give it one "
                              "returning {map name: ShapeSpec(channels, stride)} (mrae.modeling.shapes)")
        widths = {spec.channels for spec in extractor.output_shape().values()}
        if len(widths) != 1:
            raise ValueError(f"the extractor's maps have the widths {sorted(widths)}; "
                             "torchvision's RPN and box heads need one")
        self.out_channels: int = widths.pop()

    def output_shape(self) -> dict[str, ShapeSpec]:
        """The extractor's maps: {name: ShapeSpec(channels, stride)} in forward's order."""
        return self.extractor.output_shape()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.extractor(self.body(x))


def build_extractor(
    extractor: ExtractorSpec,
    channels: dict[str, int],
    *,
    level: int = 1,
    template: int = 2,
    mode: str = "global",
    out_channels: int = 256,
    upsample: str = "bilinear",
    learn_temperature: bool = False,
    embed_channels: int = 64,
    pool_size: int = 4,
    embed_dim: int = 256,
) -> nn.Module:
    """The extractor over levels of widths ``channels``: ``EXTRACTORS[extractor]`` with the
    settings it reads, or the module given (or the one a function given returns for ``channels``)."""
    if isinstance(extractor, nn.Module):
        return extractor
    if not isinstance(extractor, str):
        return extractor(dict(channels))
    if extractor == "single":
        return EXTRACTORS["single"](channels, level=level)
    if extractor == "fpn":
        return EXTRACTORS["fpn"](channels, out_channels=out_channels)
    if extractor == "mrae":
        return EXTRACTORS["mrae"](
            channels, out_channels=out_channels, template=template, mode=mode,
            embed_channels=embed_channels, pool_size=pool_size, embed_dim=embed_dim,
            learn_temperature=learn_temperature, upsample=upsample,
        )
    return EXTRACTORS[extractor](channels, out_channels=out_channels, upsample=upsample)


def build_levels_and_extractor(
    extractor: ExtractorSpec = "mrae",
    *,
    backbone: str = "resnet18",
    pretrained: str | Path | None = None,
    trainable_layers: int | None = None,
    norm: str = "auto",
    weights_later: bool = False,
    **extractor_settings,
) -> tuple[ExtractorBackbone, nn.Sequential]:
    """:func:`build_backbone` and the conv5_x stage it leaves out (for the paper's C4 box head)."""
    body = ResNetLevels(backbone, pretrained=pretrained, trainable_layers=trainable_layers, norm=norm,
                        weights_later=weights_later)
    ext = build_extractor(extractor, body.channels, **extractor_settings)
    # conv5_x belongs to a C4 box head only; the backbone leaves it out (no unused parameters).
    layer4, body.layer4 = body.layer4, None
    return ExtractorBackbone(body, ext), layer4


def build_backbone(
    extractor: ExtractorSpec = "mrae",
    *,
    backbone: str = "resnet18",
    pretrained: str | Path | None = None,
    trainable_layers: int | None = None,
    norm: str = "auto",
    weights_later: bool = False,
    **extractor_settings,
) -> ExtractorBackbone:
    """ResNet levels C1..C3 + an extractor, without a detector around them (see the module's example).

    Args:
        extractor: a name of :data:`~mrae.modeling.extractors.EXTRACTORS`, an ``nn.Module`` that
            takes the levels ``{"c1", "c2", "c3"}`` and has ``output_shape()``, or a function
            from the levels' widths to such a module.
        backbone, pretrained, trainable_layers, norm, weights_later: the ResNet trunk, as
            :func:`mrae.modeling.detector.build_detector` takes them.
        extractor_settings: ``level``, ``template``, ``mode``, ``out_channels``, ``upsample``,
            ``learn_temperature``, ``embed_channels``, ``pool_size``, ``embed_dim`` (those the
            extractor reads; see :func:`build_extractor`).

    Returns:
        An :class:`ExtractorBackbone`: forward(images [N, 3, H, W]) -> OrderedDict of maps,
        ``out_channels``, ``output_shape()``.
    """
    if isinstance(extractor, str) and extractor not in EXTRACTORS:
        raise ConfigError(f"extractor={extractor!r} is not valid; choose one of: {', '.join(EXTRACTORS)}")
    defaults = {k: p.default for k, p in inspect.signature(build_extractor).parameters.items()}
    unknown = sorted(set(extractor_settings) - set(defaults) - {"extractor", "channels"})
    if unknown:
        raise ConfigError(f"build_backbone: unknown settings {unknown}; give those of build_extractor")
    problem = out_of_scope(extractor_settings, defaults,
                           extractor if isinstance(extractor, str) else None, "faster_rcnn")
    if problem is not None:
        raise ConfigError(problem)
    built, _ = build_levels_and_extractor(
        extractor, backbone=backbone, pretrained=pretrained, trainable_layers=trainable_layers,
        norm=norm, weights_later=weights_later, **extractor_settings,
    )
    return built
