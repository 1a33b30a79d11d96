"""Shared pytest fixtures: fixed seeds (autouse) and the device the tests run on (CPU)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def seed():
    """Seed Python, NumPy and torch's global RNGs before every test; restore torch's after."""
    state = torch.random.get_rng_state()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield 0
    torch.random.set_rng_state(state)


@pytest.fixture
def device() -> torch.device:
    """The default test suite is CPU-only (GPU tests are marked ``gpu`` and opt in)."""
    return torch.device("cpu")
