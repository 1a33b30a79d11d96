from __future__ import annotations

import pytest

from . import linksim_fakes as fakes


@pytest.fixture
def fake_methods():
    """Register the fake methods for one test; clear their call log."""
    fakes.register()
    fakes.CALLS.clear()
    fakes.FAIL_AT["ebno_db"] = None
    yield fakes
    fakes.unregister()
