"""The RNG states a checkpoint holds: restoring them repeats the same random numbers."""

from __future__ import annotations

import random

import numpy as np
import torch

from mrae.engine.rng import rng_state, set_rng_state


def test_rng_states_round_trip():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1]) and first[2] == again[2]
