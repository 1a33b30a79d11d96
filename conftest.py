"""The docstring examples (``>>>``) of every module of the distribution run as tests (issue 13).

``pytest`` (the README's ``python -m pytest -q -n 2``) collects them from ``linksim/``, ``phy/`` and
``codecs/`` (``testpaths`` in ``pyproject.toml``) with pytest's own doctest collector, but imports each
module under its installed name (``phy/ofdm.py`` is ``linksim.phy.ofdm``): collected by path, as
``--doctest-modules`` does, ``phy/`` and ``codecs/`` would be imported as top-level packages, which they
are not (the standard library owns ``codecs``; see DESIGN.md §1). Examples that need a download or
minutes are marked ``# doctest: +SKIP`` in place.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule

ROOT = Path(__file__).resolve().parent
#: folder -> the package it is installed as (pyproject.toml [tool.setuptools.package-dir])
PACKAGE_DIRS = {"linksim": "linksim", "phy": "linksim.phy", "codecs": "linksim.codecs"}


def installed_name(path: Path) -> str | None:
    """``linksim.phy.ofdm`` for ``phy/ofdm.py``; ``None`` outside the three package folders."""
    try:
        rel = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return None
    package = PACKAGE_DIRS.get(rel.parts[0]) if rel.parts else None
    if package is None or rel.suffix != ".py":
        return None
    return ".".join([package, *(p for p in rel.with_suffix("").parts[1:] if p != "__init__")])


class InstalledDoctestModule(DoctestModule):
    """pytest's doctest collector on the module imported by its installed name."""

    def _getobj(self):
        return importlib.import_module(installed_name(self.path))


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent):
    found = yield
    name = installed_name(file_path)
    if name is None or file_path.name in ("conftest.py", "__main__.py"):
        return found
    # pytest's own DoctestModule (with --doctest-modules) would import the file by its path
    return [c for c in found if not isinstance(c, DoctestModule)] + [
        InstalledDoctestModule.from_parent(parent, path=file_path)]
