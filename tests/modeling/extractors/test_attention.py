"""The attention extractors (soft, mrae): softmax weights, the template's similarity, gradients,
template-independent parameters."""

from __future__ import annotations

import pytest
import torch

from mrae.errors import ConfigError
from mrae.modeling.extractors import MRAE, SoftAttention
from mrae.modeling.extractors.fusion import ConcatFusion, SumFusion

CHANNELS = {"c1": 16, "c2": 24, "c3": 32}


def fake_levels(n: int = 2, h: int = 25, w: int = 33, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {
        "c1": torch.randn(n, 16, h, w, generator=g),
        "c2": torch.randn(n, 24, (h + 1) // 2, (w + 1) // 2, generator=g),
        "c3": torch.randn(n, 32, (h + 3) // 4, (w + 3) // 4, generator=g),
    }


ATTENTION = [
    lambda: SoftAttention(CHANNELS, out_channels=8),
    lambda: MRAE(CHANNELS, out_channels=8, template=1),
    lambda: MRAE(CHANNELS, out_channels=8, template=2, learn_temperature=True),
    lambda: MRAE(CHANNELS, out_channels=8, template=3, mode="spatial"),
]


@pytest.mark.parametrize("make", ATTENTION, ids=["soft", "mrae-t1", "mrae-t2-temp", "mrae-t3-spatial"])
def test_attention_is_a_softmax_over_levels_and_gradients_reach_every_parameter(make):
    torch.manual_seed(0)
    extractor = make()
    assert extractor.attention is None
    levels = {k: v.requires_grad_() for k, v in fake_levels().items()}
    out = extractor(levels)["0"]
    weights = extractor.attention
    assert weights.shape[:2] == (2, 3) and not weights.requires_grad
    assert torch.all(weights > 0)
    torch.testing.assert_close(weights.sum(1), torch.ones_like(weights.sum(1)))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in extractor.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", ["global", "spatial"])
@pytest.mark.parametrize("template", [1, 2, 3])
def test_template_similarity_is_exactly_one(template, mode):
    torch.manual_seed(0)
    extractor = MRAE(CHANNELS, out_channels=8, template=template, mode=mode)
    sims = extractor.similarities(fake_levels())
    assert torch.equal(sims[:, template - 1], torch.ones_like(sims[:, template - 1]))
    others = [i for i in range(3) if i != template - 1]
    assert torch.all(sims[:, others].abs() <= 1 + 1e-6)


def test_mrae_parameters_do_not_depend_on_the_template():
    torch.manual_seed(0)
    t1 = MRAE(CHANNELS, out_channels=8, template=1)
    t2 = MRAE(CHANNELS, out_channels=8, template=2)
    t2.load_state_dict(t1.state_dict())  # mixed training: template-1 weights into template 2
    levels = fake_levels()
    t1(levels)
    t2(levels)
    assert not torch.allclose(t1.attention, t2.attention)
    t2.template = 1
    t2(levels)
    torch.testing.assert_close(t1.attention, t2.attention)


def test_attention_weights_mix_the_projected_levels():
    torch.manual_seed(0)
    extractor = MRAE(CHANNELS, out_channels=8, template=2, upsample="nearest")
    levels = fake_levels(n=1)
    out = extractor(levels)["0"]
    a = extractor.attention[0]
    up = [torch.nn.functional.interpolate(p(levels[k]), size=(25, 33), mode="nearest")
          for p, k in zip(extractor.proj, ("c1", "c2", "c3"), strict=True)]
    torch.testing.assert_close(out, a[0] * up[0] + a[1] * up[1] + a[2] * up[2])


def test_fusions_use_every_level():
    torch.manual_seed(0)
    for extractor in (ConcatFusion(CHANNELS, 8), SumFusion(CHANNELS, 8)):
        levels = {k: v.requires_grad_() for k, v in fake_levels().items()}
        extractor(levels)["0"].sum().backward()
        assert all(v.grad.abs().sum() > 0 for v in levels.values())


def test_identity_projection_when_widths_match():
    extractor = SoftAttention(CHANNELS, out_channels=32)
    assert isinstance(extractor.proj[2], torch.nn.Identity)
    assert isinstance(extractor.proj[0], torch.nn.Conv2d)


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: MRAE(CHANNELS, template=4), "template=4.*1, 2, 3"),
        (lambda: MRAE(CHANNELS, mode="local"), "'global', 'spatial'"),
        (lambda: SoftAttention(CHANNELS, upsample="cubic"), "'bilinear', 'nearest'"),
    ],
)
def test_bad_extractor_arguments(make, text):
    with pytest.raises(ConfigError, match=text):
        make()
