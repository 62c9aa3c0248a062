"""RoI pooling over several maps that exports to a fast ONNX graph.

torchvision's :class:`~torchvision.ops.MultiScaleRoIAlign` writes each map's pooled RoIs back to
their places with an element-wise ``ScatterElements`` over the whole [K, C, S, S] result when
traced (``_onnx_merge_levels``), once per map: in onnxruntime that scatter took 40% of a Faster
R-CNN + FPN image (``python benchmarks/onnx_profile.py``, docs/hosts_and_export.md). Here, while
exporting, the maps' results are concatenated and put back in order by one row gather with the
inverse permutation; in PyTorch the pooling is torchvision's, unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


class ExportableMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign (same arguments, no parameters); while exporting to ONNX
    with more than one map, :meth:`pool_by_gather` computes the same result."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        if not torch.onnx.is_in_onnx_export() or len(self.featmap_names) == 1:
            return super().forward(x, boxes, image_shapes)
        return self.pool_by_gather(x, boxes, image_shapes)

    def pool_by_gather(self, x: dict[str, Tensor], boxes: list[Tensor],
                       image_shapes: list[tuple[int, int]]) -> Tensor:
        """The pooled RoIs [K, C, S, S] of ``boxes`` (per image [N_i, 4] xyxy, input pixels; K in
        all, in their order), each from the map its size picks: each map's RoIs pooled together,
        concatenated, then reordered by a gather."""
        maps = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(maps, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        levels = self.map_levels(boxes)
        pooled, places = [], []
        for level, (feature, scale) in enumerate(zip(maps, self.scales, strict=True)):
            index = torch.where(levels == level)[0]
            pooled.append(roi_align(feature, rois[index], output_size=self.output_size,
                                    spatial_scale=scale, sampling_ratio=self.sampling_ratio))
            places.append(index)
        order = torch.cat(places)  # the RoI at each row of the concatenation
        inverse = torch.zeros_like(order).scatter(0, order, torch.arange(order.shape[0]))
        return torch.cat(pooled).index_select(0, inverse)
