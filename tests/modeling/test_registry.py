"""Adding an extractor or a host is one module and one registration (docs/architecture.md, "Where
new things go"): a toy of each, registered as the built-in ones are, loads from a config, is
checked there and trains one step; and the settings machinery that the registrations rest on."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from mrae.engine.config import load_config
from mrae.engine.train import train
from mrae.errors import ConfigError
from mrae.modeling import registry
from mrae.modeling.caps import UNCUT, DetectionCaps
from mrae.modeling.extractor_backbone import ExtractorBackbone
from mrae.modeling.extractor_settings import ExtractorSettings
from mrae.modeling.host_settings import HostSettings
from mrae.modeling.hosts.anchors import points
from mrae.modeling.hosts.fcos import MraeFCOS
from mrae.modeling.settings import Rule, at_least, between, make_settings, setting
from mrae.modeling.shapes import ShapeSpec
from mrae.modeling.transform import build_transform

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- the toy extractor: C2, scaled


@dataclass(frozen=True)
class ScaledC2Settings(ExtractorSettings):
    c2_scale: float = setting(1.0, "what C2's projection is multiplied by",
                              rule=between(0, 10, what="a scale", open_low=True))


class ScaledC2(nn.Module):
    """C2 projected to ``out_channels`` and scaled: one map at stride 8."""

    def __init__(self, channels: dict[str, int], out_channels: int, scale: float) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels["c2"], out_channels, 1)
        self.out_channels, self.scale = out_channels, scale

    @classmethod
    def from_settings(cls, channels: dict[str, int], out_channels: int, s: ScaledC2Settings) -> ScaledC2:
        return cls(channels, out_channels, s.c2_scale)

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"0": ShapeSpec(self.out_channels, 8)}

    def forward(self, levels: dict[str, Tensor]) -> OrderedDict[str, Tensor]:
        return OrderedDict([("0", self.proj(levels["c2"]) * self.scale)])


# ---------------------------------------------------------------- the toy host: plain FCOS


@dataclass(frozen=True)
class PlainFCOSSettings(HostSettings):
    center_sampling_radius: float = setting(1.5, "positives within this many strides of a box's centre",
                                            rule=between(0, 10, what="a radius", open_low=True))


def build_plain_fcos(backbone: ExtractorBackbone, s: PlainFCOSSettings) -> MraeFCOS:
    """torchvision's FCOS head as it is (no ignore regions), with the caps of CappedOneStage."""
    model = MraeFCOS(backbone, s.num_classes, anchor_generator=points(backbone.output_shape()),
                     center_sampling_radius=s.center_sampling_radius, score_thresh=s.box_score_thresh,
                     nms_thresh=s.box_nms_thresh, detections_per_img=UNCUT)
    model.transform = build_transform(s.min_size, s.max_size, s.fixed_size)
    model.caps = DetectionCaps(s.detections_per_img, s.detections_per_class)
    model.num_classes = s.num_classes
    return model


@pytest.fixture
def registered(monkeypatch):
    """The two registrations (in registry.py they are one line each)."""
    monkeypatch.setitem(registry.EXTRACTORS, "scaled_c2", registry.Registered(ScaledC2.from_settings, ScaledC2Settings))
    monkeypatch.setitem(registry.HOSTS, "plain_fcos", registry.Registered(build_plain_fcos, PlainFCOSSettings))


def _config(tmp_path, tiny_data, *overrides: str):
    path = tmp_path / "toy.yaml"
    path.write_text(f"""
model:
  backbone: resnet18
  trainable_layers: 5
  out_channels: 32  # torchvision's FCOS head: GroupNorm in 32 groups
  min_size: 96
  max_size: 128
data:
  train_images: {tiny_data}/images/train
  train_annotations: {tiny_data}/annotations/instances_train.json
  val_images: {tiny_data}/images/val
  val_annotations: {tiny_data}/annotations/instances_val.json
  workers: 0
train:
  steps: 1
  batch_size: 2
  log_every: 1
  device: cpu
eval:
  max_images: 2
""")
    return load_config(path, list(overrides))


@pytest.mark.parametrize(("overrides", "built"), [
    (["model.extractor=scaled_c2", "model.c2_scale=0.5"], "GeneralizedRCNN"),
    (["model.detector=plain_fcos", "model.plain_fcos.center_sampling_radius=2.5"], "MraeFCOS"),
])
def test_a_registered_toy_extractor_and_host_train_one_step(registered, tmp_path, tiny_data, overrides, built):
    cfg = _config(tmp_path, tiny_data, *overrides)
    torch.manual_seed(0)
    metrics = train(cfg, tmp_path / "run")
    assert "AP" in metrics
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("step") == 1 and r.get("loss", float("nan")) > 0 for r in log)
    from mrae.engine.trained import load_trained

    model = load_trained(tmp_path / "run" / "checkpoints" / "last.pth").model
    assert type(model).__name__ == built
    if built == "MraeFCOS":
        assert model.center_sampling_radius == 2.5
    else:
        assert model.backbone.extractor.scale == 0.5


def test_the_toys_settings_are_checked_and_scoped_like_the_built_in_ones(registered, tmp_path, tiny_data):
    with pytest.raises(ConfigError, match=r"model\.c2_scale=-1\.0 is not valid; give a scale in \(0, 10\]$"):
        _config(tmp_path, tiny_data, "model.extractor=scaled_c2", "model.c2_scale=-1")
    with pytest.raises(ConfigError, match=r"model\.c2_scale=2\.0 applies to extractor scaled_c2 only, not to 'mrae'"):
        _config(tmp_path, tiny_data, "model.c2_scale=2")
    with pytest.raises(ConfigError, match=r"model\.plain_fcos\.center_sampling_radius=0\.0 is not valid"):
        _config(tmp_path, tiny_data, "model.detector=plain_fcos", "model.plain_fcos.center_sampling_radius=0")
    with pytest.raises(ConfigError, match=r"choose one of faster_rcnn, retinanet, fcos, plain_fcos$"):
        _config(tmp_path, tiny_data, "model.detector=yolo")
    # the host study's host list is the registry's
    from mrae.apps.study import facts

    assert facts.OTHER_HOSTS == tuple(h for h in registry.HOSTS if h not in ("faster_rcnn", "plain_fcos"))


def test_make_settings_checks_each_value_then_the_whole():
    @dataclass(frozen=True)
    class Pair:
        low: int = setting(1, "the low end", rule=at_least(0))
        high: int = setting(2, "the high end", rule=at_least(0))
        kind: str | None = setting(None, "a kind", choices=("a", "b"), nullable=True)
        flag: bool = setting(False, "a flag", rule=Rule(lambda v: isinstance(v, bool), "true or false"))

        def problems(self):
            if self.high < self.low:
                yield "high", f"give at least model.low={self.low}"

    assert make_settings(Pair, {"low": 3, "high": 4, "other": 1}) == Pair(3, 4)
    assert make_settings(Pair, {"kind": None}).kind is None
    for values, message in [
        ({"low": -1}, r"^model\.low=-1 is not valid; give an integer >= 0$"),
        ({"low": True}, r"model\.low=True is not valid"),
        ({"kind": "c"}, r"^model\.kind='c' is not valid; choose one of a, b$"),
        ({"flag": 1}, r"^model\.flag=1 is not valid; give true or false$"),
        ({"low": 5, "high": 4}, r"^model\.high=4 is not valid; give at least model\.low=5$"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make_settings(Pair, values)


def test_the_registry_refuses_registrations_that_do_not_fit(monkeypatch):
    @dataclass(frozen=True)
    class OtherUpsample(ExtractorSettings):
        upsample: str = setting("nearest", "another default for a key the others declare")

    monkeypatch.setitem(registry.EXTRACTORS, "odd", registry.Registered("x:y", OtherUpsample))
    with pytest.raises(ValueError, match="declares 'upsample' with another default"):
        registry.check_registry()
    monkeypatch.delitem(registry.EXTRACTORS, "odd")
    monkeypatch.setitem(registry.HOSTS, "odd", registry.Registered("x:y", ExtractorSettings))
    with pytest.raises(ValueError, match="must extend HostSettings"):
        registry.check_registry()
