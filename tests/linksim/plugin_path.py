"""Make the test plug-in (``tests/linksim/plugin``) visible: its folder on ``sys.path`` and its entry
point loaded, as a pip-installed plug-in would be. Spawned workers inherit ``sys.path``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"


def install() -> None:
    if str(PLUGIN_DIR) not in sys.path:
        sys.path.insert(0, str(PLUGIN_DIR))
    from linksim.registry import METHODS, load_entry_points

    if "plugin_study" not in METHODS:
        load_entry_points()


def subprocess_env(**extra: str) -> dict:
    """The environment of a ``linksim`` subprocess that sees the plug-in (and the given variables)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
               OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    env.pop("LINKSIM_TEST_KILL_IN_WRITE", None)
    env.update(extra)
    return env
