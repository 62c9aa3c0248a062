"""Every host stays what it was: a stored golden fixture (``golden/hosts.json``) of tiny seeded
models, each host with a few extractors, and what they give on one seeded batch.

Per case it holds, per parameter group (``backbone.body``, ``backbone.extractor``, ``rpn``,
``roi_heads``, ``head``), the sha256 of the group's tensors (names, shapes, dtypes, bytes), their
count and their sum; the training losses of one forward pass (two images, one with an ignore
region); and per image the count and sums of the evaluation's boxes, scores and labels.

The parameters must match exactly (the seeded initialisation does not depend on the machine);
losses and detections to a relative 1e-5 (the same code on another CPU may round differently in
the last bits). Regenerating the file on this code gives it byte for byte (a refactoring that
must keep a host bit-identical shows no diff)::

    PYTHONPATH=$PWD python tests/modeling/test_golden.py --write

Write it again only when a change is meant to change a host, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from mrae.modeling.detector import build_detector

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

GOLDEN = Path(__file__).parent / "golden" / "hosts.json"
RTOL, ATOL = 1e-5, 1e-6

TINY = dict(backbone="resnet18", num_classes=3, min_size=64, max_size=96, out_channels=16,
            trainable_layers=5, box_score_thresh=0.0)
RPN = dict(rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=200,
           rpn_post_nms_top_n_test=50, rpn_batch_size_per_image=64, box_batch_size_per_image=32)
EXTRACTORS = {
    "single-c2": dict(extractor="single", level=2),
    "mrae-t2": dict(extractor="mrae", template=2),
    "sum": dict(extractor="sum"),
    "fpn": dict(extractor="fpn"),
}
CASES: dict[str, dict] = {
    **{f"faster_rcnn/{name}": dict(detector="faster_rcnn", **RPN, **ext) for name, ext in EXTRACTORS.items()},
    "faster_rcnn/single-c2-c4": dict(detector="faster_rcnn", **RPN, **EXTRACTORS["single-c2"], head="c4"),
    **{f"{host}/{name}": dict(detector=host, **EXTRACTORS[name])
       for host in ("retinanet", "fcos") for name in ("single-c2", "mrae-t2", "sum")},
    # label assignment by NWD (mrae.modeling.box_similarity): the hosts that take it
    "faster_rcnn/mrae-t2-nwd": dict(detector="faster_rcnn", **RPN, **EXTRACTORS["mrae-t2"], box_similarity="nwd"),
    "retinanet/mrae-t2-nwd": dict(detector="retinanet", **EXTRACTORS["mrae-t2"], box_similarity="nwd"),
}


def batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Two seeded images of different sizes; boxes of 6 to 30 px, one an ignore region."""
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 64, 96, generator=generator), torch.rand(3, 80, 72, generator=generator)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 30.0, 28.0], [50.0, 20.0, 56.0, 27.0]]),
         "labels": torch.tensor([1, 2])},
        {"boxes": torch.tensor([[8.0, 40.0, 38.0, 70.0]]), "labels": torch.tensor([2]),
         "ignore_boxes": torch.tensor([[40.0, 4.0, 70.0, 30.0]])},
    ]
    return images, targets


def group(name: str) -> str:
    """The parameter group of a state-dict key: ``backbone.<part>``, else its first component."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "backbone" else parts[0]


def parameters(model: torch.nn.Module) -> dict[str, dict]:
    """Per group: sha256 over (name, shape, dtype, bytes) of its tensors, their count and sum."""
    groups: dict[str, dict] = {}
    for name, value in model.state_dict().items():
        entry = groups.setdefault(group(name), {"digest": hashlib.sha256(), "count": 0, "sum": 0.0})
        entry["digest"].update(name.encode())
        entry["digest"].update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
        entry["digest"].update(value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        entry["count"] += value.numel()
        entry["sum"] += float(value.detach().double().sum())
    return {k: {"sha256": v["digest"].hexdigest(), "count": v["count"], "sum": v["sum"]}
            for k, v in groups.items()}


def record(case: str) -> dict:
    """What the golden file holds for ``case``, computed with today's code."""
    torch.manual_seed(0)
    model = build_detector(**TINY, **CASES[case])
    images, targets = batch()
    torch.manual_seed(2)
    losses = model.train()(images, targets)
    with torch.no_grad():
        detections = model.eval()(images)
    return {
        "parameters": parameters(model),
        "losses": {k: float(v.detach()) for k, v in losses.items()},
        "detections": [{"count": len(d["scores"]), "boxes_sum": float(d["boxes"].double().sum()),
                        "scores_sum": float(d["scores"].double().sum()),
                        "labels_sum": int(d["labels"].sum())} for d in detections],
    }


def generate() -> dict:
    return {"about": "tests/modeling/test_golden.py: regenerate with its --write", "settings": TINY,
            "cases": {case: record(case) for case in CASES}}


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def test_the_file_covers_every_case(golden):
    assert golden["settings"] == TINY
    assert sorted(golden["cases"]) == sorted(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_host_matches_the_golden_fixture(case, golden):
    stored, now = golden["cases"][case], record(case)
    assert now["parameters"].keys() == stored["parameters"].keys()
    for name, entry in stored["parameters"].items():
        assert now["parameters"][name] == entry, f"{case}: parameters of {name}"
    assert list(now["losses"]) == list(stored["losses"])
    for name, value in stored["losses"].items():
        assert now["losses"][name] == pytest.approx(value, rel=RTOL, abs=ATOL), f"{case}: loss {name}"
    assert len(now["detections"]) == len(stored["detections"])
    for index, (found, expected) in enumerate(zip(now["detections"], stored["detections"], strict=True)):
        assert found["count"] == expected["count"], f"{case}: detections in image {index}"
        assert found["labels_sum"] == expected["labels_sum"], f"{case}: labels in image {index}"
        for key in ("boxes_sum", "scores_sum"):
            assert found[key] == pytest.approx(expected[key], rel=RTOL, abs=ATOL), f"{case}: {key} {index}"


# sha256 of whole state dicts, pinned by tests since the one-function builder of commit eeb5a0c
# (before the hosts): the golden file's digests split the same bytes by group.
PINNED = {
    "faster_rcnn/mrae-t2": "b527d55537bcd0b54721f7a1c37f463e85936f91e7ae42034217fc529026c4c1",
    "faster_rcnn/single-c2-c4": "6ecab25bfdebbb9c38c621638b839cdeecff22bfa688d45851afc1cacb09b0d4",
    "faster_rcnn/fpn": "48f0d53b31a50d33f28db062a725c9dfbbe67722b20a4fafbfe6bdb185d2f51d",
}


@pytest.mark.parametrize("case", list(PINNED))
def test_faster_rcnn_parameters_equal_those_before_the_hosts(case):
    torch.manual_seed(0)
    model = build_detector(**TINY, **CASES[case])
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(value.shape)).encode() + str(value.dtype).encode())
        digest.update(value.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    assert digest.hexdigest() == PINNED[case]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write  (rewrites {GOLDEN} from today's code)")
    torch.set_num_threads(1)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(generate(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
