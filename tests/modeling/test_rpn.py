"""mrae's RPN (mrae.modeling.rpn): torchvision's, bit for bit, built from settings; its counts read
from those settings, another count another RPN on the same parameters."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from mrae.modeling.rpn import RPN, RPNSettings

SETTINGS = RPNSettings(pre_nms_top_n_train=40, pre_nms_top_n_test=30, post_nms_top_n_train=20,
                       post_nms_top_n_test=10, batch_size_per_image=32)


def parts():
    torch.manual_seed(0)
    return AnchorGenerator(((8.0, 16.0),), ((0.5, 1.0, 2.0),)), RPNHead(8, 6)


def inputs():
    generator = torch.Generator().manual_seed(1)
    images = ImageList(torch.zeros(2, 3, 64, 64), [(64, 64), (48, 64)])
    features = {"0": torch.rand(2, 8, 16, 16, generator=generator)}
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 20.0, 18.0]])},
               {"boxes": torch.tensor([[30.0, 10.0, 40.0, 30.0], [2.0, 2.0, 9.0, 9.0]])}]
    return images, features, targets


def test_equals_torchvisions_rpn_bit_for_bit():
    anchors, head = parts()
    ours = RPN(anchors, head, SETTINGS)
    s = SETTINGS
    theirs = RegionProposalNetwork(anchors, head, s.fg_iou_thresh, s.bg_iou_thresh, s.batch_size_per_image,
                                   s.positive_fraction, {"training": 40, "testing": 30},
                                   {"training": 20, "testing": 10}, s.nms_thresh)
    for mode in ("train", "eval"):
        outputs = []
        for rpn in (ours, theirs):
            getattr(rpn, mode)()
            images, features, targets = inputs()
            torch.manual_seed(2)
            outputs.append(rpn(images, features, targets if mode == "train" else None))
        (ours_boxes, ours_losses), (their_boxes, their_losses) = outputs
        assert all(torch.equal(a, b) for a, b in zip(ours_boxes, their_boxes, strict=True))
        assert ours_losses.keys() == their_losses.keys()
        assert all(torch.equal(ours_losses[k], their_losses[k]) for k in ours_losses)
    assert [len(b) for b in ours_boxes] == [10, 10]


def test_counts_come_from_the_settings():
    rpn = RPN(*parts(), SETTINGS)
    assert (rpn.train().pre_nms_top_n(), rpn.post_nms_top_n()) == (40, 20)
    assert (rpn.eval().pre_nms_top_n(), rpn.post_nms_top_n()) == (30, 10)


def test_another_count_is_another_rpn_on_the_same_parameters():
    rpn = RPN(*parts(), SETTINGS).eval()
    wide = rpn.with_post_nms_top_n(testing=50)
    assert not wide.training and wide.head is rpn.head and wide.anchor_generator is rpn.anchor_generator
    assert wide.post_nms_top_n() == 50 and rpn.post_nms_top_n() == 10  # the model's own unchanged
    assert wide.settings.post_nms_top_n_train == 20 and wide.settings.ignore_iof_thr == rpn.settings.ignore_iof_thr
    images, features, _ = inputs()
    with torch.no_grad():
        few, _ = rpn(images, features)
        many, _ = wide(images, features)
    assert all(torch.equal(a, b[: len(a)]) for a, b in zip(few, many, strict=True))  # the same best first
    assert all(len(b) > len(a) for a, b in zip(few, many, strict=True))
    assert rpn.train().with_post_nms_top_n(training=5).training
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="post_nms_top_n test="):
            rpn.with_post_nms_top_n(testing=bad)
