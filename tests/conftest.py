"""Shared fixtures: the tiny detector and data settings that the training tests build on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TINY_MODEL = """
model:
  extractor: {extractor}
  backbone: resnet18
  trainable_layers: 5
  out_channels: 32
  min_size: 96
  max_size: 128
  faster_rcnn:
    rpn_pre_nms_top_n_train: 200
    rpn_post_nms_top_n_train: 100
    rpn_pre_nms_top_n_test: 100
    rpn_post_nms_top_n_test: 50
    rpn_batch_size_per_image: 64
    box_batch_size_per_image: 32
"""
TINY_DATA = """
data:
  train_images: {train_images}
  train_annotations: {train_annotations}
  val_images: {val_images}
  val_annotations: {val_annotations}
  workers: 0
"""


@pytest.fixture(scope="session")
def tiny_sections() -> Callable[..., str]:
    """`tiny_sections(extractor, paths)`: the `model:` and `data:` YAML of a 128 x 96 px ResNet-18
    run with small RPN and RoI counts; `paths` holds the four image/annotation paths. A test adds
    its own `train:` and `eval:` sections."""

    def sections(extractor: str, paths: dict[str, str]) -> str:
        return TINY_MODEL.format(extractor=extractor) + TINY_DATA.format(**paths)

    return sections


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: two processes' worth of threads on a shared 2-core machine
    is much slower than one. Modules that train models use it with ``pytestmark``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CAMPAIGN_TRAIN = """
train:
  steps: 1
  batch_size: 2
  lr: 0.01
  warmup_steps: 0
  log_every: 1
  eval_every: 0
  checkpoint_every: 1
  keep_last: 2
  device: cpu
eval:
  max_images: 2
"""


@pytest.fixture(scope="session")
def world_files(tmp_path_factory, tiny_sections) -> tuple[Path, Path, Path]:
    """The campaigns' world (tests/test_campaign*.py): a tiny synthetic dataset, a valid config for
    it and a one-step checkpoint trained on it, made once per session."""
    from mrae import cli

    root = tmp_path_factory.mktemp("campaign")
    data = root / "data"
    assert cli.main(["synth", str(data), "--images", "4", "--val-images", "2", "--seed", "3",
                     "--width", "128", "--height", "96", "--workers", "0"]) == 0
    paths = {f"{split}_{kind}": data / folder for split in ("train", "val")
             for kind, folder in (("images", f"images/{split}"),
                                  ("annotations", f"annotations/instances_{split}.json"))}
    config = root / "tiny.yaml"
    config.write_text(tiny_sections("mrae", paths) + CAMPAIGN_TRAIN)
    assert cli.main(["train", "--config", str(config), "--out", str(root / "trained")]) == 0
    return data, config, root / "trained" / "checkpoints" / "last.pth"


HOST_RUN = """
model:
  extractor: mrae
  backbone: resnet18
  trainable_layers: 5
  out_channels: 32
  min_size: 96
  max_size: 128
data:
  train_images: {root}/images/train
  train_annotations: {root}/annotations/instances_train.json
  val_images: {root}/images/val
  val_annotations: {root}/annotations/instances_val.json
  workers: 0
train:
  steps: 4
  batch_size: 2
  lr: 0.01
  warmup_steps: 2
  log_every: 1
  eval_every: 4
  checkpoint_every: 2
  device: cpu
eval:
  max_images: 2
"""


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """4 synthetic 128 x 96 training images and 2 val (seed 1) in COCO format (``images/<split>``,
    ``annotations/instances_<split>.json``), made once per session; tests only read it."""
    from mrae import cli

    root = tmp_path_factory.mktemp("tiny") / "data"
    assert cli.main(["synth", str(root), "--images", "4", "--val-images", "2", "--seed", "1",
                     "--width", "128", "--height", "96", "--workers", "0"]) == 0
    return root


@pytest.fixture(scope="session")
def host_run_config(tmp_path_factory, tiny_data) -> Path:
    """A 4-step MRAE run on :func:`tiny_data` that any host trains (tests/test_hosts_cli.py,
    tests/test_cuda.py add ``model.detector=...``, ``train.device=...``). Made once per session."""
    path = tmp_path_factory.mktemp("hosts") / "tiny.yaml"
    path.write_text(HOST_RUN.format(root=tiny_data))
    return path
