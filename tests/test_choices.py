"""The torch-free names (mrae.choices, the registry's) are exactly the ones the builders know."""

from __future__ import annotations

import pytest

from mrae import choices
from mrae.engine.config import load_config
from mrae.errors import ConfigError
from mrae.modeling import registry
from mrae.modeling.backbone import RESNET_DEPTHS


def test_every_registered_name_has_its_builder():
    for table in (registry.EXTRACTORS, registry.HOSTS):
        for name, entry in table.items():
            assert callable(entry.resolve()), name
    assert tuple(RESNET_DEPTHS) == choices.BACKBONE_NAMES


def test_the_registrations_fit_together():
    registry.check_registry()
    # a key that several extractors read is declared once (one field, one default)
    assert registry.extractors_reading("upsample") == ("soft", "mrae", "concat", "sum")
    assert registry.hosts_reading("anchor_sizes") == ("faster_rcnn", "retinanet")
    assert registry.hosts_reading("head") == ("faster_rcnn",)


def test_the_config_refuses_a_name_outside_the_choices():
    with pytest.raises(ConfigError, match="extractor"):
        load_config("configs/synth/mrae_t2.yaml", ["model.extractor=bifpn"])
