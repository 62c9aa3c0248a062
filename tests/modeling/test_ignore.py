"""Ignore regions in training (mrae.modeling.ignore): anchors and proposals inside an ignore box are neither
positives nor negatives; without ignore boxes training is torchvision's, bit for bit; the dataset,
the augmentation and the resize carry the ignore boxes; COCOeval ignores an "ignore": 1 region."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from mrae.data.augment import AugmentByKey, crop_target
from mrae.data.coco import CocoDetection
from mrae.engine.config import load_config
from mrae.errors import ConfigError, DataError
from mrae.evaluation.coco_metrics import coco_metrics
from mrae.modeling.detector import build_detector
from mrae.modeling.ignore import box_iof, check_iof_thr

# A 256 x 192 image that the model halves to 128 x 96: the ignore box must be halved with it.
SMALL = dict(
    backbone="resnet18", num_classes=2, min_size=96, max_size=128, out_channels=16,
    trainable_layers=5, rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=100,
    rpn_batch_size_per_image=64, box_batch_size_per_image=64,
)  # fmt: skip
REAL = [20.0, 20.0, 60.0, 60.0]  # original pixels
IGNORE = [120.0, 40.0, 240.0, 180.0]  # far from REAL: every anchor inside it is a negative today


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_detector(**SMALL).train()


def _inputs(ignore: list[list[float]] | None):
    image = torch.rand(3, 192, 256, generator=torch.Generator().manual_seed(1))
    target = {"boxes": torch.tensor([REAL]), "labels": torch.tensor([1])}
    if ignore is not None:
        target["ignore_boxes"] = torch.tensor(ignore).reshape(-1, 4)
    return [image], [target]


def _anchor_labels(model, ignore):
    images, targets = model.transform(*_inputs(ignore))
    with torch.no_grad():
        features = list(model.backbone(images.tensors).values())
    anchors = model.rpn.anchor_generator(images, features)
    labels, _ = model.rpn.assign_targets_to_anchors(anchors, targets)
    return anchors[0], labels[0], targets[0]


def test_box_iof_is_the_share_of_the_box_inside_the_region():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0], [50.0, 50, 60, 60],
                          [3.0, 3.0, 3.0, 8.0]])  # fmt: skip
    regions = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 100.0, 100.0]])
    assert box_iof(boxes, regions).tolist() == [[1.0, 1.0], [0.25, 1.0], [0.0, 1.0], [0.0, 0.0]]


def test_ignored_anchors_are_neither_positive_nor_negative(model):
    anchors, without, _ = _anchor_labels(model, None)
    _, empty, _ = _anchor_labels(model, [])
    _, labels, target = _anchor_labels(model, [IGNORE])
    # The ignore box was resized with the image (256 x 192 -> 128 x 96).
    torch.testing.assert_close(target["ignore_boxes"], torch.tensor([IGNORE]) / 2)
    inside = box_iof(anchors, target["ignore_boxes"])[:, 0] > 0.5
    assert inside.sum() > 100
    assert (without[inside] == 0).all()  # today: negatives
    assert (labels[inside] == -1).all()  # now: ignored
    assert torch.equal(labels[~inside], without[~inside])  # the others keep torchvision's label
    assert torch.equal(empty, without)  # an empty ignore list changes nothing
    assert (labels == 1).sum() == (without == 1).sum() > 0


def test_a_positive_inside_an_ignore_box_stays_positive(model):
    anchors, without, _ = _anchor_labels(model, None)
    _, labels, target = _anchor_labels(model, [[0.0, 0.0, 256.0, 192.0]])  # the whole image
    inside = box_iof(anchors, target["ignore_boxes"])[:, 0] > 0.5  # not the anchors half outside
    assert (without == 1).sum() > 0 and (labels[without == 1] == 1).all()
    assert (labels[inside & (without != 1)] == -1).all()
    assert torch.equal(labels[~inside], without[~inside])


def test_ignored_proposals_are_never_sampled(model):
    grid = torch.stack(torch.meshgrid(torch.arange(0.0, 120, 6), torch.arange(0.0, 88, 6),
                                      indexing="ij"), -1).reshape(-1, 2)  # fmt: skip
    proposals = torch.cat([grid, grid + 8], 1)  # 8 x 8 boxes all over the 128 x 96 input

    def sampled(ignore):
        _, targets = model.transform(*_inputs(ignore))
        torch.manual_seed(0)
        boxes, _, labels, _ = model.roi_heads.select_training_samples([proposals.clone()], targets)
        return boxes[0], labels[0], targets[0]

    boxes, labels, _ = sampled(None)
    region = torch.tensor([IGNORE]) / 2
    inside = box_iof(boxes, region)[:, 0] > 0.5
    assert inside.sum() > 5 and (labels[inside] == 0).all()  # today: background samples
    boxes, labels, _ = sampled([IGNORE])
    inside = box_iof(boxes, region)[:, 0] > 0.5
    assert not inside.any() and (labels == 0).sum() > 0 and (labels >= 1).sum() > 0


def test_threshold_off_keeps_negatives():
    torch.manual_seed(0)
    off = build_detector(**SMALL, ignore_iof_thr=None).train()
    anchors, labels, target = _anchor_labels(off, [IGNORE])
    inside = box_iof(anchors, target["ignore_boxes"])[:, 0] > 0.5
    assert (labels[inside] == 0).all()
    assert off.roi_heads.ignore_iof_thr is None and check_iof_thr(-1) is None


def test_without_ignore_boxes_a_training_step_is_torchvisions_bit_for_bit(model):
    plain = copy.deepcopy(model)
    plain.rpn.__class__ = RegionProposalNetwork  # torchvision's own assignment
    plain.roi_heads.__class__ = type("Plain", (RoIHeads,), {})  # no ignore override
    assert type(model.rpn) is not RegionProposalNetwork

    def losses(net, ignore):
        torch.manual_seed(3)
        images, targets = _inputs(ignore)
        return net(images, targets)

    ours, theirs = losses(model, []), losses(plain, None)
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    # ... and an ignore box does change them (the comparison can fail)
    changed = losses(model, [IGNORE])
    assert not torch.equal(changed["loss_objectness"], theirs["loss_objectness"])


def test_config_and_builder_check_the_threshold(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  extractor: mrae\n")
    assert load_config(config).model.ignore_iof_thr == 0.5
    assert load_config(config, ["model.ignore_iof_thr=null"]).model.ignore_iof_thr is None
    assert load_config(config, ["model.ignore_iof_thr=-1"]).model.ignore_iof_thr == -1
    for bad in ("1.5", "nan"):
        with pytest.raises(ConfigError, match="model.ignore_iof_thr"):
            load_config(config, [f"model.ignore_iof_thr={bad}"])
    with pytest.raises(ConfigError, match="ignore_iof_thr"):
        check_iof_thr(2)


# ----------------------------------------------------------------------------- data and eval


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    Image.new("RGB", (100, 80)).save(tmp_path / "a.png")
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 20, 30, 40], "ignore": 1},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [80, 0, 20, 20], "iscrowd": 1},
    ]
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80}],
            "annotations": anns, "categories": [{"id": 1, "name": "car"}]}  # fmt: skip
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_dataset_gives_crowds_and_ignore_regions_as_ignore_boxes(coco):
    dataset = CocoDetection(coco.parent, coco, train=True)
    assert dataset.coco.anns[2]["iscrowd"] == 1 and dataset.coco.anns[2]["ignore"] == 1
    _, target = dataset[0]
    assert target["boxes"].tolist() == [[10.0, 10.0, 20.0, 20.0]]
    assert target["ignore_boxes"].tolist() == [[40.0, 20.0, 70.0, 60.0], [80.0, 0.0, 100.0, 20.0]]
    image, flipped = AugmentByKey(dataset)[(0, True)]
    assert flipped["ignore_boxes"].tolist() == [[30.0, 20.0, 60.0, 60.0], [0.0, 0.0, 20.0, 20.0]]
    torch.manual_seed(0)
    v2 = CocoDetection(coco.parent, coco, train=True, transforms=lambda i, t: (i.flip(-1), t))
    assert type(v2[0][1]["ignore_boxes"]) is torch.Tensor


def test_crop_clips_ignore_boxes_and_drops_those_outside():
    target = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
              "ignore_boxes": torch.tensor([[0.0, 0.0, 50.0, 50.0], [60.0, 60.0, 70.0, 70.0]])}
    out = crop_target(target, 40.0, 10.0, 58.0, 40.0)  # 10 of the first box's 50 columns inside
    assert out["ignore_boxes"].tolist() == [[0.0, 0.0, 10.0, 30.0]]


def test_bad_ignore_value_is_one_line(coco):
    data = json.loads(coco.read_text())
    data["annotations"][1]["ignore"] = "yes"
    coco.write_text(json.dumps(data))
    with pytest.raises(DataError, match="annotation id 2 has 'ignore' 'yes'; use 0 or 1"):
        CocoDetection(coco.parent, coco)


def test_cocoeval_ignores_an_ignore_only_region(coco):
    dataset = CocoDetection(coco.parent, coco)
    hit = {"image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "score": 0.5}
    on_region = {"image_id": 1, "category_id": 1, "bbox": [45, 25, 20, 30], "score": 0.9}
    metrics = coco_metrics(dataset.coco, [hit, on_region], [1])
    assert metrics["AP"] == pytest.approx(1.0)  # the better-scored box on the region is no FP
    elsewhere = {**on_region, "bbox": [0, 50, 20, 20]}
    assert coco_metrics(dataset.coco, [hit, elsewhere], [1])["AP"] < 1.0
    assert not math.isnan(metrics["AP50"])
