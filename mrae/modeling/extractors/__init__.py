"""Feature extractors: each turns the ResNet levels {"c1", "c2", "c3"} into the map(s) the RPN and
the RoI head read, returns an OrderedDict of them, has an `out_channels` attribute (the maps' one
width) and describes its maps with `output_shape() -> {name: ShapeSpec(channels, stride)}`, in
forward's order (:mod:`mrae.modeling.shapes`). Each class's docstring runs an example."""

from mrae.choices import EXTRACTOR_NAMES
from mrae.modeling.extractors.fpn import FPNExtractor
from mrae.modeling.extractors.fusion import ConcatFusion, SumFusion
from mrae.modeling.extractors.mrae import MRAE
from mrae.modeling.extractors.single import SingleLevel
from mrae.modeling.extractors.soft import SoftAttention

EXTRACTORS = {
    "single": SingleLevel,
    "soft": SoftAttention,
    "mrae": MRAE,
    "concat": ConcatFusion,
    "sum": SumFusion,
    "fpn": FPNExtractor,
}
assert tuple(EXTRACTORS) == EXTRACTOR_NAMES  # the config checks names against mrae.choices

__all__ = [
    "EXTRACTORS",
    "ConcatFusion",
    "FPNExtractor",
    "MRAE",
    "SingleLevel",
    "SoftAttention",
    "SumFusion",
]
