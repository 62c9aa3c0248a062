"""The one place that turns a device setting into a ``torch.device`` and times work on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch

from mrae.errors import ConfigError

T = TypeVar("T")


def resolve_device(device: str | torch.device, key: str = "device") -> torch.device:
    """``"auto"`` -> CUDA when available, else the CPU; ``cpu``, ``cuda`` (the current CUDA device,
    with its index) or ``cuda:N`` as given.

    Raises:
        ConfigError: an unknown device name, or CUDA asked for on a machine without it (``key``
            names the setting in the message, e.g. ``train.device``).
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"{key}: unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if chosen.type != "cuda":
        return chosen
    if not torch.cuda.is_available():
        raise ConfigError(f"{key}: CUDA is not available on this machine; use {key}=cpu")
    if chosen.index is None:  # torch.cuda.set_device and per-device calls need the index
        return torch.device("cuda", torch.cuda.current_device())
    if chosen.index >= torch.cuda.device_count():
        raise ConfigError(f"{key}: {device} does not exist; this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                          f"cuda:{torch.cuda.device_count() - 1}")
    return chosen


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously; the CPU needs nothing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``(fn(), seconds)``: wall time of one call, with the device synchronised before and after."""
    synchronize(device)
    started = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - started
