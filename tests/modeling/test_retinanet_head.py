"""RetinaNet's head towers: GroupNorm (torchvision's v2 head) or He's init keep the signal's scale;
torchvision's v1 head (no norm, N(0, 0.01)), key for key, shrinks it."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.detection.retinanet import RetinaNetHead

from mrae.errors import ConfigError
from mrae.modeling.hosts.retinanet import IgnoringRetinaNetHead

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tower_gain(head: IgnoringRetinaNetHead, channels: int) -> float:
    """The RMS of the classification tower's output over its input's, on a random map."""
    features = torch.randn(1, channels, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = head.classification_head.conv(features)
    return float(out.pow(2).mean().sqrt() / features.pow(2).mean().sqrt())


def test_group_keeps_the_signal_and_none_shrinks_it():
    torch.manual_seed(0)
    group = IgnoringRetinaNetHead(256, 12, 7, 0.5, head_norm="group")
    torch.manual_seed(0)
    none = IgnoringRetinaNetHead(256, 12, 7, 0.5, head_norm="none")
    assert group.head_norm == "group"
    assert sum(isinstance(m, nn.GroupNorm) for m in group.modules()) == 8  # 4 + 4 tower convs
    assert not any(isinstance(m, nn.GroupNorm) for m in none.modules())
    # torchvision's v1 init (N(0, 0.01), 256 channels) shrinks the signal ~3x per conv
    assert tower_gain(none, 256) < 0.02 < 0.5 < tower_gain(group, 256)


def test_none_is_torchvisions_v1_head_key_for_key():
    torch.manual_seed(0)
    ours = IgnoringRetinaNetHead(32, 3, 4, 0.5, head_norm="none")
    RetinaNetHead(32, 3, 4).load_state_dict(ours.state_dict())  # strict: the same keys and shapes
    with pytest.raises(RuntimeError):  # the group head's differ (no conv bias, norm weights)
        RetinaNetHead(32, 3, 4).load_state_dict(IgnoringRetinaNetHead(32, 3, 4, 0.5, "group").state_dict())


@pytest.mark.parametrize(("key", "bad", "choices"), [("head_norm", "batch", ("'group'", "'none'")),
                                                     ("head_norm", None, ("'group'", "'none'")),
                                                     ("head_init", "xavier", ("'kaiming'", "'normal'"))])
def test_an_unknown_head_norm_or_init_is_one_line_naming_key_and_choices(key, bad, choices):
    with pytest.raises(ConfigError) as caught:
        IgnoringRetinaNetHead(32, 3, 4, 0.5, **{key: bad})
    message = str(caught.value)
    assert "\n" not in message and f"model.retinanet.{key}" in message and all(c in message for c in choices)


def test_kaiming_init_keeps_the_signal_without_a_norm_and_the_keys():
    torch.manual_seed(0)
    kaiming = IgnoringRetinaNetHead(256, 12, 7, 0.5, head_init="kaiming")
    assert 0.5 < tower_gain(kaiming, 256) < 2.0
    assert not any(isinstance(m, nn.GroupNorm) for m in kaiming.modules())
    RetinaNetHead(256, 12, 7).load_state_dict(kaiming.state_dict())  # torchvision's v1 keys
    prior = kaiming.classification_head.cls_logits.bias
    assert torch.allclose(prior, torch.full_like(prior, -4.59512))  # the 0.01 prior stays
