"""Feature extractors: each turns the ResNet levels {"c1", "c2", "c3"} into the map(s) the RPN and
the RoI head read, returns an OrderedDict of them, has an `out_channels` attribute (the maps' one
width) and describes its maps with `output_shape() -> {name: ShapeSpec(channels, stride)}`, in
forward's order (:mod:`mrae.modeling.shapes`). Each class's docstring runs an example; each is
registered by name, with its settings, in :data:`mrae.modeling.registry.EXTRACTORS`."""

from mrae.modeling.extractors.fpn import FPNExtractor
from mrae.modeling.extractors.fusion import ConcatFusion, SumFusion
from mrae.modeling.extractors.mrae import MRAE
from mrae.modeling.extractors.single import SingleLevel
from mrae.modeling.extractors.soft import SoftAttention

__all__ = [
    "MRAE",
    "ConcatFusion",
    "FPNExtractor",
    "SingleLevel",
    "SoftAttention",
    "SumFusion",
]
