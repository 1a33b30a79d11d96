"""Shared pytest fixtures: fixed seeds (autouse) and the device the tests run on (CPU).

The suite runs offline: ``LINKSIM_OFFLINE=1`` is set for it and every subprocess it starts, so a
metric whose weight file is absent (LPIPS without the AlexNet file) is reported unavailable instead
of trying a download — tests send traffic to loopback only. The download code itself is tested
with a patched ``urlopen`` (tests/linksim/test_weights.py).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

os.environ["LINKSIM_OFFLINE"] = "1"


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


@pytest.fixture
def single_thread():
    """Run one test with one intra-op thread, restoring the setting afterwards.

    Small batched kernels (Sionna's LDPC BP decoder) run several times *slower* with 2 threads on
    a 2-core machine shared with other processes (measured: 1.8 s vs 0.23 s per batch).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_configure(config):
    """Under pytest-xdist every worker is a process of its own: one intra-op thread per worker.

    Two workers with two threads each oversubscribe the two cores, and the small kernels of the
    PHY (LDPC belief propagation, per-RE equalisation) then run several times slower.
    """
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
