"""A light start (issue 13): the registry, ``linksim list`` and ``linksim validate`` of every shipped
scenario import no torch (checked in a fresh interpreter, where nothing else imported it first), and
the torch-free validator still refuses what it refused before. The time of ``linksim validate``
before and after the change is a benchmark (``benchmarks/validate_start.py``), not a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

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


def _validate(path: Path) -> tuple[int, bool, str]:
    code = ("import sys\nfrom linksim.cli import main\ntry:\n    rc = main(['validate', sys.argv[1]])\n"
            "except SystemExit as e:\n    rc = e.code\n"
            "print('RESULT', rc, 'torch' in sys.modules, 'sionna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    last = [line for line in out.stdout.splitlines() if line.startswith("RESULT")][-1].split()
    return int(last[1]), last[2] == "True" or last[3] == "True", out.stderr


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_validate_imports_no_torch(path):
    """Every check of ``linksim validate`` (keys, sweep, CBR against the grid, the methods' own checks:
    weights, MCS, LRISC side information, images decoded) runs without torch or Sionna."""
    rc, heavy, err = _validate(path)
    assert rc == 0, err
    assert not heavy, "validate imported torch or sionna"


@pytest.mark.parametrize("change, message", [
    ({"sweep": {"cbr": ["1/1000"]}}, "cbr"),  # N = ρ·3HW not an integer
    ({"data": {"source": "embedded", "size": 64, "names": ["no_such_photo"]}}, "no_such_photo"),
])
def test_torch_free_validate_still_refuses(tmp_path, change, message):
    """The light checks are the real ones: a bad CBR and an unknown image still fail (exit 2, one line)
    without torch."""
    import yaml

    raw = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(raw.get(key), dict) else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    rc, heavy, err = _validate(path)
    assert rc == 2 and message in err, err
    assert not heavy


def test_every_package_folder_is_installed():
    """pyproject's package list names every folder with an ``__init__.py`` (a non-editable install
    would silently lack one: ``linksim.codecs.lrisc`` was missing)."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {v: k for k, v in cfg["package-dir"].items()}
    listed = set(cfg["packages"])
    found = set()
    for folder, package in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([package, *rel]))
    assert found - listed == set(), sorted(found - listed)
