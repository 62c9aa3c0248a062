"""The builder opened up (issue 18): build_backbone alone (its docstring example runs), an
extractor given as a module or a function, and settings that do not apply refused in one line
(one build_model(cfg) behind the trainer and every loader: tests/engine/test_trained.py)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

from mrae.engine.config import load_config
from mrae.errors import ConfigError
from mrae.modeling.detector import attention_weights, build_detector
from mrae.modeling.extractor_backbone import ExtractorBackbone, build_backbone
from mrae.modeling.extractors import SumFusion
from mrae.modeling.shapes import ShapeSpec

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = dict(backbone="resnet18", num_classes=3, min_size=64, max_size=96, out_channels=16,
            trainable_layers=5)
RESNET18_LEVELS = {"c1": 64, "c2": 128, "c3": 256}


def test_build_backbone_docstring_example_runs():
    module = importlib.import_module("mrae.modeling.extractor_backbone")
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0 and results.failed == 0


def test_build_backbone_is_the_levels_and_the_extractor_only():
    backbone = build_backbone(extractor="fpn", backbone="resnet18", out_channels=16)
    assert isinstance(backbone, ExtractorBackbone) and backbone.body.layer4 is None
    maps = backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(m.shape[-2:]) for m in maps.values()] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert backbone.out_channels == 16


class Halves(nn.Module):
    """A user's extractor: C1 projected to `width` channels, at half its values."""

    def __init__(self, channels: dict[str, int], width: int = 8) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels["c1"], width, 1)
        self.out_channels = width

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"0": ShapeSpec(self.out_channels, 4)}

    def forward(self, levels):
        return {"0": self.proj(levels["c1"]) * 0.5}


@pytest.mark.parametrize("given", [Halves(RESNET18_LEVELS), Halves, SumFusion(RESNET18_LEVELS, 16)])
@pytest.mark.parametrize("detector", ["faster_rcnn", "fcos"])
def test_an_extractor_module_or_function_is_hosted(given, detector):
    model = build_detector(**TINY, extractor=given, detector=detector)
    assert model.backbone.extractor is given if isinstance(given, nn.Module) else True
    model.train()
    target = {"boxes": torch.tensor([[8.0, 8.0, 24.0, 20.0]]), "labels": torch.tensor([1])}
    losses = model([torch.rand(3, 64, 96)], [target])
    sum(losses.values()).backward()
    assert model.eval()([torch.rand(3, 64, 96)])[0]["boxes"].shape[-1] == 4
    assert attention_weights(model) is None or attention_weights(model).shape[0] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(extractor="mrae", level=2), r"^model\.level=2 applies to extractor single only, not to 'mrae'; remove it$"),
        (dict(extractor="single", template=3), r"model\.template=3 applies to extractor mrae only"),
        (dict(extractor="sum", faster_rcnn={"colour": 1}), r"^model\.faster_rcnn\.colour is not a setting of faster_rcnn; valid keys of model\.faster_rcnn: anchor_sizes, "),
        (dict(extractor="single", upsample="nearest"), r"model\.upsample='nearest' applies to extractor soft / mrae"),
        (dict(extractor=Halves(RESNET18_LEVELS), mode="spatial"), r"not to an extractor given as a module"),
        (dict(detector="retinanet", head="c4"), r"^model\.head='c4' applies to detector faster_rcnn only, not to 'retinanet'; remove it$"),
        (dict(detector="fcos", anchor_sizes=(4, 8)), r"model\.anchor_sizes=\(4, 8\) applies to detector faster_rcnn / retinanet"),
        (dict(detector="fcos", rpn_nms_thresh=0.5), r"model\.rpn_nms_thresh=0\.5 applies to detector faster_rcnn only"),
        (dict(detector="yolo"), r"model\.detector='yolo' is not valid; choose one of"),
        (dict(extractor=42), r"model\.extractor=42 is not valid"),
    ],
)
def test_settings_that_do_not_apply_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_detector(**kwargs)
    assert "\n" not in str(info.value)


def test_build_backbone_checks_its_settings():
    with pytest.raises(ConfigError, match=r"^model\.template=3 applies to extractor mrae only, not to 'sum'; remove it$"):
        build_backbone(extractor="sum", template=3)
    with pytest.raises(ConfigError, match=r"extractor='bifpn' is not valid; choose one of"):
        build_backbone(extractor="bifpn")
    with pytest.raises(ConfigError, match=r"unknown settings \['anchor_sizes'\]"):
        build_backbone(extractor="mrae", anchor_sizes=(8,))


def test_the_config_refuses_them_too(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("name: c\n")
    with pytest.raises(ConfigError, match=r"override: model\.head applies to detector faster_rcnn only \(model\.faster_rcnn\.head\)"):
        load_config(path, ["model.detector=fcos", "model.head=c4"])
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.template=3 applies to extractor mrae only, not to 'sum'"):
        load_config(path, ["model.extractor=sum", "model.template=3"])
    with pytest.raises(ConfigError, match=r"model\.detector='ssd' is not valid; choose one of faster_rcnn, retinanet, fcos"):
        load_config(path, ["model.detector=ssd"])
    assert load_config(path, ["model.detector=retinanet"]).model.detector == "retinanet"


def test_a_stored_config_with_an_inapplicable_setting_still_loads():
    # a checkpoint's config written before the refusal: the builder ignored the setting then
    from mrae.engine.config import config_from_dict

    cfg = config_from_dict({"model": {"extractor": "single", "level": 2, "template": 3, "head": "c4"}})
    assert (cfg.model.template, cfg.model.level, cfg.model.faster_rcnn.head) == (2, 2, "c4")
    cfg = config_from_dict({"model": {"detector": "fcos", "rpn_nms_thresh": 0.5}})
    assert cfg.model.faster_rcnn.rpn_nms_thresh == 0.7
