"""The Python API (linksim.run / load_scenario / Results), a light `import linksim`, the example
plug-in (entry point, in-process and under the process executor) and the notebook example."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import linksim
from linksim.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin"

TINY = {"name": "api", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 2},
        "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"]},
        "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}]}


def test_import_linksim_is_light():
    code = ("import sys, linksim; assert 'torch' not in sys.modules, 'torch'; "
            "assert not [m for m in sys.modules if m.startswith('linksim.')], sorted(sys.modules); "
            "import linksim.phy; bad = [m for m in sys.modules if m.startswith(('linksim.engine', "
            "'linksim.scenario', 'linksim.codecs', 'linksim.api', 'linksim.registry'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_run_returns_dataframes_and_figures(tmp_path):
    res = linksim.run(TINY, output=tmp_path / "out")
    assert res.dir == tmp_path / "out"
    assert isinstance(res.rows, pd.DataFrame) and len(res.rows) == 2 * 2
    assert isinstance(res.summary, pd.DataFrame) and set(res.summary["csnr_db"]) == {0.0, 10.0}
    pngs = {p.name for p in res.figures if p.suffix == ".png"}
    assert "psnr_vs_csnr.png" in pngs and all(p.is_file() for p in res.figures)
    # the same scenario from a YAML path resumes (nothing to redo), fresh=True starts over
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(TINY))
    again = linksim.run(path, output=tmp_path / "out", figures=False)
    assert again.rows.equals(res.rows) and again.figures == []


def test_load_scenario_dict_path_and_errors(tmp_path):
    scn = linksim.load_scenario(TINY)
    assert scn.data.limit == 2 and linksim.load_scenario(scn) is scn
    with pytest.raises(ScenarioError, match=r"methods\[0\]\.kind: unknown method kind 'nope'"):
        linksim.load_scenario(dict(TINY, methods=[{"kind": "nope"}]))


@pytest.fixture
def softcast_plugin(tmp_path, monkeypatch):
    """The example plug-in as pip would install it: its package and a dist-info with the entry
    point on sys.path (spawned workers inherit sys.path and load the entry point themselves)."""
    dist = tmp_path / "site" / "linksim_softcast-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: linksim-softcast\nVersion: 0.1.0\n")
    ep = yaml.safe_load((PLUGIN / "pyproject.toml").read_text().split("[project.entry-points.")[1].split("\n", 1)[1]
                        .split("\n\n")[0].replace(" = ", ": "))
    (dist / "entry_points.txt").write_text("[linksim.methods]\n" + "".join(f"{k} = {v}\n" for k, v in ep.items()))
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    from linksim.registry import METHODS, load_entry_points

    load_entry_points()
    assert "softcast" in METHODS
    yield
    METHODS.remove("softcast")


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_example_plugin_method_runs(tmp_path, softcast_plugin, executor):
    raw = dict(TINY, executor=executor, workers=2, threads=1,
               sweep={"csnr_db": [0, 20], "cbr": ["1/24"]},
               methods=[{"name": "softcast", "kind": "softcast"}, {"name": "zf", "kind": "softcast", "decoder": "zf"}])
    res = linksim.run(raw, output=tmp_path / "out", figures=False)
    psnr = res.summary.set_index(["method", "csnr_db"])["psnr"]
    # a linear code gains with SNR, and the LMMSE shrinkage never loses to zero-forcing
    assert psnr["softcast", 20.0] > psnr["softcast", 0.0] + 1
    assert psnr["softcast", 0.0] > psnr["zf", 0.0]
    assert psnr["softcast", 20.0] >= psnr["zf", 20.0] - 0.05


def test_notebook_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NOTEBOOK_OUTPUT", str(tmp_path / "nb"))
    runpy.run_path(str(ROOT / "examples" / "notebook.py"), run_name="__main__")
    assert (tmp_path / "nb" / "my_plot.png").stat().st_size > 5000
    assert "perfect - LS" in capsys.readouterr().out
