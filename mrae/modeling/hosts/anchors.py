"""Anchors on the extractor's maps, from their description (``output_shape()``), never from the
extractor's name."""

from __future__ import annotations

from torchvision.models.detection.anchor_utils import AnchorGenerator

from mrae.errors import ConfigError
from mrae.modeling.shapes import ShapeSpec

# Maps that carry anchors but are not pooled for RoIs: torchvision's extra pyramid map
# (LastLevelMaxPool's "pool", stride 32), as in torchvision's fasterrcnn_resnet50_fpn.
RPN_ONLY_MAPS = ("pool",)


def anchors_and_roi_maps(
    extractor: str, shapes: dict[str, ShapeSpec], sizes: tuple[float, ...],
    ratios: tuple[float, ...], fpn_anchors: str,
) -> tuple[AnchorGenerator, list[str]]:
    """The anchors and the maps a RoI pooling reads, for the extractor's maps ``shapes``.

    One map: every size x ratio on it. Several maps (a pyramid, finest first): torchvision's one
    size per map (``fpn_anchors="per_level"``: size k on map k) or every size on every map
    (``"all"``). RoIs are pooled from every map except ``RPN_ONLY_MAPS``.
    """
    names = list(shapes)
    if len(names) > 1 and fpn_anchors == "per_level":
        if len(sizes) != len(names):
            raise ConfigError(
                f"model.anchor_sizes={list(sizes)} is not valid for extractor {extractor!r}; give "
                f"{len(names)} sizes, one per map {names}, or set fpn_anchors='all'"
            )
        per_map = tuple((s,) for s in sizes)
    else:
        per_map = (sizes,) * len(names)
    anchors = AnchorGenerator(per_map, (ratios,) * len(names))
    return anchors, [name for name in names if name not in RPN_ONLY_MAPS]


def points(shapes: dict[str, ShapeSpec]) -> AnchorGenerator:
    """FCOS's one point per map position, as a square "anchor" of the map's stride (torchvision's
    FCOS reads the anchor's size as the map's scale: its centre sampling radius and its object
    size range per map)."""
    return AnchorGenerator(tuple((float(s.stride),) for s in shapes.values()), ((1.0,),) * len(shapes))
