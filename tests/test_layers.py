"""The import structure (issue 13): every module of the distribution imports one way only.

Each module's imports are read with ``ast`` — module-level and function-local ones alike, relative
ones resolved, those under ``if TYPE_CHECKING:`` left out (they never run) — and checked against the
layers below (drawn in ``docs/INTERNALS.md``): a module may import from its own layer or the layers
below it, never from one above, and the imports between modules form no cycle. ``linksim.phy``
imports nothing of the distribution but itself; ``linksim.codecs`` only itself, ``linksim.phy`` and
the weights layer (``linksim.weights`` + ``linksim.errors``, whose ``WeightsUnavailable`` it raises).
No module imports a top-level ``phy`` or ``codecs`` (the folders are packages only under ``linksim.``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folder -> the package name it is installed as (pyproject.toml [tool.setuptools.package-dir])
PACKAGE_DIRS = {"linksim": "linksim", "phy": "linksim.phy", "codecs": "linksim.codecs"}

#: the layers, lowest first; a module imports from its own layer or a lower one. Subpackages
#: (``linksim.phy.*``, ``linksim.codecs.*``, ``linksim.metrics.*``) take the layer of their package.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("phy", ("linksim.phy",)),
    ("weights", ("linksim.errors", "linksim.weights")),  # below codecs: codecs resolve their files here
    ("codecs", ("linksim.codecs",)),
    ("L0 base", ("linksim.registry", "linksim.configs", "linksim.channels", "linksim.des",
                 "linksim.files", "linksim.summary", "linksim.metrics", "linksim.data", "linksim.sources",
                 "linksim.method_configs", "linksim.timing", "linksim.frames")),
    ("L1 planning", ("linksim.sweep",)),
    ("L2 schema", ("linksim.scenario", "linksim.studies")),
    ("L3 one job, store, reports", ("linksim.engine", "linksim.store", "linksim.reports")),
    ("L4 executors", ("linksim.executors",)),
    ("L5 run", ("linksim.runner",)),
    ("L6 interfaces", ("linksim", "linksim.cli", "linksim.api", "linksim.docs")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _layer(module: str) -> int:
    """Index in :data:`LAYERS` of the longest listed prefix of ``module``."""
    best, index = "", None
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, index = name, i
    if index is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/INTERNALS.md)")
    return index


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` of every import statement of the file, function-local ones included,
    ``if TYPE_CHECKING:`` blocks excluded; ``from a import b`` counts as ``a.b`` when ``a.b`` is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if sub in MODULES else target, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _internal(name: str) -> str | None:
    """The module of the distribution that ``name`` refers to (its longest known prefix), else None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    return {m: {t for name, _ in imports_of(m, p) if (t := _internal(name)) and t != m}
            for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_imports_point_down_the_layers():
    bad = []
    for module, path in MODULES.items():
        mine = _layer(module)
        for name, line in imports_of(module, path):
            target = _internal(name)
            if target is None or target == module or module.startswith(target + "."):
                continue  # outside the distribution, itself, or its own package's __init__
            if _layer(target) > mine:
                bad.append(f"{_rel(path)}:{line}: {module} ({LAYERS[mine][0]}) imports {target} "
                           f"({LAYERS[_layer(target)][0]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ is imported with each of its modules: edges into the own package are not cycles
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_top_level_phy_or_codecs_import():
    """``phy`` and ``codecs`` exist only as ``linksim.phy`` / ``linksim.codecs`` (stdlib ``codecs`` has
    no submodules and none of our names, so ``import codecs`` for the standard library stays allowed)."""
    ours = {p.stem for p in (ROOT / "codecs").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    bad = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                         if node.module == "codecs" and a.name in ours]
            for n in names:
                if n == "phy" or n.startswith("phy.") or n.startswith("codecs."):
                    bad.append(f"{_rel(path)}:{node.lineno}: imports {n}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ("import a.b\nfrom c import d\n", {"a.b", "c"}),
    ("def f():\n    import x.y\n", {"x.y"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hidden\nelse:\n    import shown\n",
     {"typing", "shown"}),
])
def test_import_reader(tmp_path, source, expected):
    """The reader itself: function-local imports count, ``TYPE_CHECKING`` blocks do not."""
    f = tmp_path / "m.py"
    f.write_text(source)
    assert {n for n, _ in imports_of("pkg.m", f)} == expected


def test_layer_test_catches_an_upward_import(monkeypatch, tmp_path):
    """A module of L1 that imports the CLI is reported (the check can fail)."""
    f = tmp_path / "sweep.py"
    f.write_text("def f():\n    from linksim.cli import app\n")
    monkeypatch.setitem(MODULES, "linksim.sweep", f)
    with pytest.raises(AssertionError, match="linksim.sweep .L1 planning. imports linksim.cli"):
        test_imports_point_down_the_layers()


def test_internals_draws_every_layer():
    """docs/INTERNALS.md draws the layers: each engine module is named on the line of its layer."""
    text = (ROOT / "docs" / "INTERNALS.md").read_text(encoding="utf-8")
    drawing = text[text.index("L6 interfaces"):text.index("codecs            linksim.codecs")]
    rows: dict[str, str] = {}
    label = None
    for line in drawing.splitlines():
        if line[:1] == "L":
            label = line.split()[0]
        if label:
            rows[label] = rows.get(label, "") + " " + line
    missing = []
    for name, names in LAYERS[3:]:
        row = rows.get(name.split()[0], "")
        missing += [m for m in names if m != "linksim" and not re.search(rf"\b{m.removeprefix('linksim.')}\b", row)]
    assert not missing, f"docs/INTERNALS.md does not draw these modules in their layer: {missing}"
