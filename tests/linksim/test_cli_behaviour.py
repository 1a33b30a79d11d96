"""CLI behaviour (issue 12 item 7): --resume / --fresh, `linksim weights`, `linksim plot` on a
partial run, `linksim run` without a file."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from linksim import cli
from linksim.cli import main

from .plugin_path import install

RAW = {
    "name": "clib", "seed": 1, "device": "cpu", "channel": {"kind": "awgn"}, "sweep": {"ebno_db": [0, 1, 2]},
    "methods": [{"name": "a", "kind": "plugin_study"}],
}


@pytest.fixture
def scenario(tmp_path, monkeypatch):
    install()
    log = tmp_path / "calls.log"
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(RAW))
    return file, tmp_path / "out", log


def _calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_resume_is_the_default_and_fresh_recomputes(scenario):
    file, out, log = scenario
    assert main(["run", str(file), "-o", str(out), "--no-figures"]) == 0
    assert len(_calls(log)) == 3
    assert main(["run", str(file), "-o", str(out), "--no-figures"]) == 0
    assert len(_calls(log)) == 3  # resumed: nothing recomputed
    assert main(["run", str(file), "-o", str(out), "--no-figures", "--fresh"]) == 0
    assert len(_calls(log)) == 6 and len(pd.read_csv(out / "results.csv")) == 3


def test_refused_resume_is_one_line_exit_2(scenario, capsys):
    file, out, log = scenario
    assert main(["run", str(file), "-o", str(out), "--no-figures"]) == 0
    file.write_text(yaml.safe_dump(dict(RAW, seed=2)))
    capsys.readouterr()
    assert main(["run", str(file), "-o", str(out), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "differs in: seed" in err and "--fresh" in err


def test_plot_on_a_partial_run(scenario, monkeypatch):
    """A run that died after its first job: `linksim plot` draws what is there."""
    file, out, log = scenario
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_FAIL", "1.0")
    assert main(["run", str(file), "-o", str(out), "--no-figures"]) != 0  # the job's failure
    assert len(pd.read_csv(out / "results.csv")) == 1
    assert main(["plot", str(out)]) == 0
    table = [ln for ln in (out / "report.md").read_text().splitlines() if ln.startswith("| a |")]
    assert len(table) == 1  # the one finished point (BER figures are drawn for kind phy_ber only)


def test_weights_lists_every_known_file(capsys):
    from linksim.weights import KNOWN

    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    for spec in KNOWN.values():
        assert spec.name in out


def test_run_without_a_file_runs_the_embedded_quickstart(monkeypatch, tmp_path):
    """No file: the quickstart shipped in the package is loaded (its run is replaced by a stub)."""
    seen = {}

    def fake_run(scn, output=None, **kw):
        seen["name"] = scn.name
        (tmp_path / "results.csv").write_text("method\n")
        return tmp_path

    monkeypatch.setattr("linksim.runner.run_scenario", fake_run)
    assert main(["run", "--no-figures", "-o", str(tmp_path)]) == 0
    from linksim.scenario import load_scenario

    assert seen["name"] == load_scenario(cli.quickstart_path()).name
