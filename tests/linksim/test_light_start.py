"""A light start (issue 13): the registry and ``linksim list`` import no torch (checked in a fresh
interpreter, where nothing else imported it first). The time of ``linksim validate`` before and after
the change is a benchmark (``benchmarks/validate_start.py``), not a test."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = {
    "import linksim.registry": "import linksim.registry as r; r.METHODS.names(); r.CHANNELS.describe()",
    "linksim list": "from linksim.cli import main; assert main(['list']) == 0",
    "import linksim": "import linksim; linksim.__version__",
}


@pytest.mark.parametrize("name", list(CASES))
def test_imports_no_torch(name):
    code = CASES[name] + "\nimport sys\nprint('torch' in sys.modules, 'linksim.engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stdout + out.stderr


def test_the_check_can_fail():
    """The same probe sees torch when something imports it (the check is not vacuous)."""
    code = "import linksim.engine, linksim.data\nimport sys\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"
