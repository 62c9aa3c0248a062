"""`resolve_device`: the device names a config or command line may give, on machines with and
without CUDA (faked: CI has no GPU; tests/test_cuda.py runs the real thing where one is)."""

from __future__ import annotations

import pytest
import torch

from mrae.device import resolve_device
from mrae.errors import ConfigError


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="train.device: CUDA is not available.*train.device=cpu"):
        resolve_device("cuda", key="train.device")


def test_cuda_gets_the_current_device_index(two_gpus):
    # torch.cuda.set_device refuses a CUDA device without an index: "cuda" and "auto" name one
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_unknown_names_and_missing_gpus_are_one_line_errors(two_gpus):
    with pytest.raises(ConfigError, match="eval.device: cuda:2 does not exist; this machine has 2"):
        resolve_device("cuda:2", key="eval.device")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")
