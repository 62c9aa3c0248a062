"""DistributedDataParallel's find_unused_parameters only for a model that leaves parameters without
a gradient: one dry forward and backward on a copy tells which."""

from __future__ import annotations

import pytest
import torch

from mrae.engine.distributed import unused_parameters
from mrae.engine.trainer import detector_dry_loss
from mrae.modeling.detector import build_detector

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kwargs):
    return build_detector(backbone="resnet18", out_channels=16, num_classes=3, min_size=64,
                          max_size=64, rpn_pre_nms_top_n_train=50, rpn_post_nms_top_n_train=20,
                          rpn_batch_size_per_image=16, box_batch_size_per_image=8, **kwargs)


def test_single_level_1_leaves_layer2_and_layer3_without_gradients():
    names = unused_parameters(tiny(extractor="single", level=1), detector_dry_loss)
    assert names
    assert all(n.startswith(("backbone.body.layer2.", "backbone.body.layer3.")) for n in names)
    assert any(".layer2." in n for n in names) and any(".layer3." in n for n in names)


@pytest.mark.parametrize("kwargs", [{"extractor": "mrae"}, {"extractor": "single", "level": 3},
                                    {"extractor": "single", "level": 3, "head": "c4"}])
def test_models_that_use_every_parameter(kwargs):
    assert unused_parameters(tiny(**kwargs), detector_dry_loss) == []


def test_frozen_parameters_do_not_count():
    model = tiny(extractor="single", level=1)
    for name, param in model.named_parameters():
        if ".layer2." in name or ".layer3." in name:
            param.requires_grad_(False)
    assert unused_parameters(model, detector_dry_loss) == []


def test_the_dry_run_leaves_the_model_and_the_random_streams_alone():
    model = tiny(extractor="mrae").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    rng = torch.get_rng_state()
    unused_parameters(model, detector_dry_loss)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():  # batch-norm statistics included
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
