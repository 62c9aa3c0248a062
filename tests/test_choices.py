"""The torch-free names of mrae.choices are exactly the ones the builders know."""

from mrae import choices
from mrae.engine.config import load_config
from mrae.errors import ConfigError
from mrae.modeling.backbone import RESNET_DEPTHS
from mrae.modeling.extractors import EXTRACTORS
from mrae.modeling.hosts import HOSTS


def test_every_name_has_its_builder():
    assert tuple(EXTRACTORS) == choices.EXTRACTOR_NAMES
    assert tuple(RESNET_DEPTHS) == choices.BACKBONE_NAMES
    assert tuple(HOSTS) == choices.DETECTOR_NAMES


def test_the_scoped_settings_are_model_settings_with_known_users():
    from mrae.engine.config_schema import ModelConfig

    for table, names in [(choices.EXTRACTOR_SETTINGS, choices.EXTRACTOR_NAMES),
                         (choices.DETECTOR_SETTINGS, choices.DETECTOR_NAMES)]:
        for key, users in table.items():
            assert key in ModelConfig.__dataclass_fields__, key
            assert set(users) <= set(names), key


def test_the_config_refuses_a_name_outside_the_choices():
    import pytest

    with pytest.raises(ConfigError, match="extractor"):
        load_config("configs/synth/mrae_t2.yaml", ["model.extractor=bifpn"])
