"""mrae.modeling.roi_pool: the export path of the RoI pooling over several maps gives
torchvision's result, and PyTorch runs torchvision's own."""

from __future__ import annotations

import torch
from torchvision.ops import MultiScaleRoIAlign

from mrae.modeling.roi_pool import ExportableMultiScaleRoIAlign


def _maps_and_boxes(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    maps = {name: torch.rand(2, 8, 256 // stride, 320 // stride, generator=generator)
            for name, stride in (("0", 4), ("1", 8), ("2", 16))}
    boxes = []
    for count in (37, 0, 12):  # an image without boxes between two with
        corner = torch.rand(count, 2, generator=generator) * torch.tensor([300.0, 240.0])
        size = 2 + torch.rand(count, 2, generator=generator) ** 2 * 400  # 2-402 px: every map used
        boxes.append(torch.cat([corner, corner + size], 1))
    return maps, boxes[::2], [(256, 320), (256, 320)]


def test_the_gather_gives_torchvisions_pooling_exactly():
    maps, boxes, shapes = _maps_and_boxes()
    reference = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)(maps, boxes, shapes)
    pooler = ExportableMultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    pooler(maps, boxes, shapes)  # sets the maps' scales
    levels = pooler.map_levels(boxes)
    assert len(torch.unique(levels)) == 3  # the boxes reach every map, so the order is shuffled
    gathered = pooler.pool_by_gather(maps, boxes, shapes)
    assert gathered.shape == (49, 8, 7, 7)
    assert torch.equal(gathered, reference)


def test_pytorch_runs_torchvisions_pooling():
    maps, boxes, shapes = _maps_and_boxes(1)
    pooler = ExportableMultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    calls = []
    pooler.pool_by_gather = lambda *args: calls.append(args)  # only the exporter may take it
    out = pooler(maps, boxes, shapes)
    assert not calls and torch.equal(out, MultiScaleRoIAlign(["0", "1", "2"], 7, 2)(maps, boxes, shapes))
