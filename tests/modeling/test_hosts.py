"""The one-stage hosts (RetinaNet, FCOS): they train and detect, ignore regions in their losses
(anchors and points inside one are neither positives nor negatives), the caps, no background label."""

from __future__ import annotations

import pytest
import torch

from mrae.modeling.caps import UNCUT, DetectionCaps
from mrae.modeling.detector import build_detector
from mrae.modeling.ignore import mark_ignored

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = dict(backbone="resnet18", num_classes=3, min_size=64, max_size=96, out_channels=16,
            trainable_layers=5, extractor="mrae", template=2)
HOSTS = ["retinanet", "fcos"]
IMAGE = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0))
BOX = {"boxes": torch.tensor([[20.0, 16.0, 36.0, 32.0]]), "labels": torch.tensor([1])}


def losses(model, target):
    torch.manual_seed(0)
    return model.train()([IMAGE], [{k: v.clone() for k, v in target.items()}])


@pytest.fixture(scope="module", params=HOSTS)
def model(request):
    torch.manual_seed(0)
    return build_detector(**TINY, detector=request.param)


def test_it_trains_and_detects(model):
    found = losses(model, BOX)
    assert all(torch.isfinite(v) for v in found.values())
    sum(found.values()).backward()
    detections = model.eval()([IMAGE])[0]
    assert set(detections) == {"boxes", "labels", "scores"}


def test_ignore_regions_take_negatives_out_and_leave_positives(model):
    whole = torch.tensor([[-100.0, -100.0, 200.0, 200.0]])  # covers every anchor, border ones too
    plain = losses(model, BOX)
    ignored = losses(model, {**BOX, "ignore_boxes": whole})
    assert ignored["classification"] < plain["classification"]  # the negatives are gone
    assert torch.equal(ignored["bbox_regression"], plain["bbox_regression"])  # the positives stay
    # no objects and the whole image ignored: nothing left to classify
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    assert losses(model, {**empty, "ignore_boxes": whole})["classification"] == 0
    assert losses(model, empty)["classification"] > 0
    # an empty list of ignore boxes is no ignore region: torchvision's losses, bit for bit
    same = losses(model, {**BOX, "ignore_boxes": torch.zeros(0, 4)})
    assert all(torch.equal(same[k], plain[k]) for k in plain)


@pytest.mark.parametrize("host", HOSTS)
def test_ignore_regions_off(host):
    torch.manual_seed(0)
    model = build_detector(**TINY, detector=host, ignore_iof_thr=None)
    whole = torch.tensor([[-100.0, -100.0, 200.0, 200.0]])  # covers every anchor, border ones too
    on, off = losses(model, {**BOX, "ignore_boxes": whole}), losses(model, BOX)
    assert all(torch.equal(on[k], off[k]) for k in off)


def test_mark_ignored_keeps_positives():
    anchors = torch.tensor([[0.0, 0, 4, 4], [10, 10, 14, 14], [40, 40, 44, 44]])
    matched = torch.tensor([0, -1, -1])
    regions = torch.tensor([[0.0, 0, 20, 20]])
    assert mark_ignored(matched, anchors, regions, 0.5).tolist() == [0, -2, -1]
    assert mark_ignored(matched, anchors, None, 0.5) is matched


@pytest.mark.parametrize("host", HOSTS)
def test_caps_and_no_background_label(host):
    torch.manual_seed(0)
    model = build_detector(**TINY, detector=host, box_score_thresh=0.0, detections_per_class=4,
                           detections_per_img=6).eval()
    found = model([IMAGE])[0]
    labels = found["labels"].tolist()
    assert len(labels) == 6 and 0 not in labels
    assert max(labels.count(k) for k in set(labels)) <= 4
    assert found["scores"].tolist() == sorted(found["scores"].tolist(), reverse=True)


def former_postprocess(model, head_outputs, anchors, image_shapes):
    """The reference: torchvision's own post-processing (the host gives it an uncut per-image
    count), then the label-0 and small-box filter and the caps, written out."""
    from torchvision.models.detection import FCOS, RetinaNet

    from mrae.modeling.caps import cap_detections
    from mrae.modeling.hosts.one_stage import MIN_SIZE

    torchvision_class = RetinaNet if isinstance(model, RetinaNet) else FCOS
    detections = torchvision_class.postprocess_detections(model, head_outputs, anchors, image_shapes)
    capped = []
    for found in detections:
        boxes = found["boxes"]
        objects = ((found["labels"] > 0) & (boxes[:, 2] - boxes[:, 0] >= MIN_SIZE)
                   & (boxes[:, 3] - boxes[:, 1] >= MIN_SIZE))
        found = {k: v[objects] for k, v in found.items()}
        keep = cap_detections(found["scores"], found["labels"], model.caps.per_class, model.caps.per_image,
                              model.num_classes)
        capped.append({k: v[keep] for k, v in found.items()})
    return capped


def random_head_outputs(seed, levels, num_classes, images=2, scores="distinct"):
    """Per level [N, HW, C] logits, [N, HW, 4] regressions, [N, HW, 1] centre-ness; anchors
    [HW, 4] xyxy per level and image inside a 64 x 96 image."""
    g = torch.Generator().manual_seed(seed)
    outputs = {"cls_logits": [], "bbox_regression": [], "bbox_ctrness": []}
    anchors = [[] for _ in range(images)]
    for count in levels:
        logits = torch.randn(images, count, num_classes, generator=g) * 2
        outputs["cls_logits"].append(logits.round() if scores == "ties" else logits)
        outputs["bbox_regression"].append(torch.rand(images, count, 4, generator=g))
        outputs["bbox_ctrness"].append(torch.randn(images, count, 1, generator=g))
        for per_image in anchors:
            xy = torch.rand(count, 2, generator=g) * torch.tensor([96.0, 64.0])
            per_image.append(torch.cat([xy, xy + torch.rand(count, 2, generator=g) * 30], 1))
    return outputs, anchors, [(64, 96)] * images


@pytest.mark.parametrize("scores", ["distinct", "ties"])
@pytest.mark.parametrize("caps", [(100, 300, 0.05, 1000), (4, 6, 0.0, 1000), (2, 50, 0.3, 7), (30, 3, 0.0, 20)])
@pytest.mark.parametrize("host", HOSTS)
def test_postprocess_is_torchvisions_then_the_caps(host, caps, scores):
    """The one-stage post-processing is torchvision's own (its per-image cut out of reach, never
    raised for the length of a call), then the label-0 filter and the caps, bit for bit."""
    torch.manual_seed(0)
    per_class, per_image, score_thresh, topk = caps
    model = build_detector(**TINY, detector=host, detections_per_class=per_class,
                           detections_per_img=per_image, box_score_thresh=score_thresh).eval()
    model.topk_candidates = topk
    for seed, levels in [(0, [300, 80]), (1, [50]), (2, [0, 40])]:
        inputs = random_head_outputs(seed, levels, model.num_classes, scores=scores)
        got = model.postprocess_detections(*inputs)
        expected = former_postprocess(model, *inputs)
        assert len(got) == len(expected) == 2
        for ours, theirs in zip(got, expected, strict=True):
            assert list(ours) == list(theirs)
            for key in ours:
                assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key])
        assert model.caps == DetectionCaps(per_image, per_class) and model.detections_per_img == UNCUT
