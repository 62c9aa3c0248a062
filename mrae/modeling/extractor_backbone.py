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

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from mrae.errors import ConfigError
from mrae.modeling import registry
from mrae.modeling.backbone import ResNetLevels
from mrae.modeling.backbone_settings import BackboneSettings
from mrae.modeling.extractor_settings import ExtractorSettings
from mrae.modeling.settings import check_values, declared, make_settings
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

    def __init__(self, body: ResNetLevels, extractor: nn.Module, name: str | None = None) -> None:
        super().__init__()
        self.body = body
        self.extractor = extractor
        #: the extractor's registered name, or its class name (for messages)
        self.name = name if name is not None else type(extractor).__name__
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

    def take_conv5(self) -> nn.Sequential:
        """ResNet's conv5_x (``body.layer4``), which the backbone does not run, handed to the host
        that does (Faster R-CNN's ``c4`` box head) and removed from the backbone."""
        layer4, self.body.layer4 = self.body.layer4, None
        if layer4 is None:
            raise ValueError("conv5_x was already taken from this backbone")
        return layer4

    def drop_conv5(self) -> None:
        """Remove conv5_x when no host took it (no parameter that nothing runs)."""
        self.body.layer4 = None


def build_extractor(extractor: ExtractorSpec, channels: dict[str, int], out_channels: int = 256,
                    settings: ExtractorSettings | None = None) -> nn.Module:
    """The extractor over levels of widths ``channels``: the registered builder of ``extractor``
    (:data:`mrae.modeling.registry.EXTRACTORS`) with its settings (their defaults when None), or
    the module given (or the one a function given returns for ``channels``)."""
    if isinstance(extractor, nn.Module):
        return extractor
    if not isinstance(extractor, str):
        return extractor(dict(channels))
    entry = registry.extractor(extractor)
    return entry.resolve()(channels, out_channels, settings if settings is not None else entry.settings())


def build_levels_and_extractor(extractor: ExtractorSpec, trunk: BackboneSettings,
                               settings: ExtractorSettings | None = None,
                               weights_later: bool = False) -> ExtractorBackbone:
    """ResNet levels (with conv5_x kept for a host to take, :meth:`ExtractorBackbone.take_conv5`)
    and the extractor, from checked settings."""
    body = ResNetLevels(trunk.backbone, pretrained=trunk.pretrained, trainable_layers=trunk.trainable_layers,
                        norm=trunk.norm, weights_later=weights_later)
    ext = build_extractor(extractor, body.channels, trunk.out_channels, settings)
    return ExtractorBackbone(body, ext, extractor if isinstance(extractor, str) else None)


def split_settings(extractor: ExtractorSpec, values: dict[str, Any]) -> tuple[BackboneSettings, ExtractorSettings | None]:
    """The trunk's and the extractor's settings from flat ``values`` (a config's ``model`` keys),
    each checked against its declaration; an extractor key that ``extractor`` does not read must
    keep its default (one-line ConfigError naming the key otherwise)."""
    named = isinstance(extractor, str)
    if named:
        registry.extractor(extractor)
    elif not (isinstance(extractor, nn.Module) or callable(extractor)):
        raise ConfigError(f"model.extractor={extractor!r} is not valid; give a name of "
                          f"{', '.join(registry.EXTRACTORS)}, or (Python API) an nn.Module")
    flat = {k: v for k, v in values.items() if k in registry.extractor_fields()}
    for entry in registry.EXTRACTORS.values():  # a bad value first, whoever reads it
        check_values(flat, entry.settings)
    problem = registry.out_of_scope(flat, extractor if named else None, next(iter(registry.HOSTS)))
    if problem is not None:
        raise ConfigError(problem)
    trunk = make_settings(BackboneSettings, values)
    own = make_settings(registry.EXTRACTORS[extractor].settings, values) if named else None
    return trunk, own


def build_backbone(extractor: ExtractorSpec = "mrae", *, weights_later: bool = False,
                   **settings: Any) -> ExtractorBackbone:
    """ResNet levels C1..C3 + an extractor, without a detector around them (see the module's example).

    Args:
        extractor: a name of :data:`mrae.modeling.registry.EXTRACTORS`, an ``nn.Module`` that
            takes the levels ``{"c1", "c2", "c3"}`` and has ``output_shape()``, or a function
            from the levels' widths to such a module.
        weights_later: the weights come afterwards from a checkpoint (see
            :func:`mrae.modeling.detector.build_detector`).
        settings: the trunk's keys (``backbone``, ``pretrained``, ``trainable_layers``, ``norm``,
            ``out_channels``: :class:`~mrae.modeling.backbone_settings.BackboneSettings`) and the
            extractor's (:mod:`mrae.modeling.extractor_settings`), as a config's ``model``
            section names them.

    Returns:
        An :class:`ExtractorBackbone`: forward(images [N, 3, H, W]) -> OrderedDict of maps,
        ``out_channels``, ``output_shape()``.
    """
    known = set(declared(BackboneSettings)) | set(registry.extractor_fields())
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"build_backbone: unknown settings {unknown}; give the trunk's and the "
                          f"extractor's: {', '.join(sorted(known))}")
    trunk, own = split_settings(extractor, settings)
    built = build_levels_and_extractor(extractor, trunk, own, weights_later)
    built.drop_conv5()
    return built
