"""The process executor when a job fails (issue 12 item 5): finished rows are stored, the error is
re-raised (jobs not yet started are cancelled; not asserted, it depends on timing), and the rerun completes to the uninterrupted table.

The failing method comes from the test plug-in (``tests/linksim/plugin``), registered through the
``linksim.methods`` entry point; spawned workers find it because they inherit ``sys.path``.
"""

from __future__ import annotations

import pandas as pd
import pytest

from linksim.engine import run_scenario
from linksim.scenario import scenario_from_dict
from linksim.store import read_points

from .plugin_path import install

RAW = {
    "name": "fail", "seed": 5, "device": "cpu", "channel": {"kind": "awgn"},
    "sweep": {"ebno_db": [0, 1, 2, 3, 4, 5, 6, 7]},
    "methods": [{"name": "a", "kind": "plugin_study"}],
    "executor": "process", "workers": 2, "threads": 1,
}


def _table(folder):
    df = pd.read_csv(folder / "results.csv")
    return df.drop(columns=["seconds"]).sort_values(["method", "point"]).reset_index(drop=True)


@pytest.mark.slow  # spawns 2 workers that import torch (~20 s on 2 busy cores)
def test_failed_job_under_process_executor(tmp_path, monkeypatch):
    install()
    log = tmp_path / "calls.log"
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_SLEEP", "0.5")
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_FAIL", "0.0")  # the first job fails
    with pytest.raises(RuntimeError, match="injected failure at ebno_db=0.0"):
        run_scenario(scenario_from_dict(RAW), output=tmp_path / "run")
    ran = log.read_text().splitlines()
    # Jobs not yet started are cancelled, but how many had started depends on timing (the pool
    # pre-queues calls; on a loaded machine all 8 may be running before the failure is seen), so
    # only what holds at any timing is asserted: the failure ran, the other jobs that ran are stored.
    assert "a:0.0" in ran
    finished = {r["point"] for r in read_points(tmp_path / "run" / "points.jsonl")}
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(rows["point"]) == finished and "ebno_db=0" not in finished  # finished jobs stored
    assert len(finished) == len(ran) - 1  # every job that ran and did not fail was stored
    monkeypatch.delenv("LINKSIM_TESTPLUGIN_FAIL")
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_SLEEP", "0")
    run_scenario(scenario_from_dict(RAW), output=tmp_path / "run")
    assert len(log.read_text().splitlines()) == len(ran) + 8 - len(finished)  # only the rest ran
    run_scenario(scenario_from_dict(dict(RAW, executor="inprocess")), output=tmp_path / "ref")
    pd.testing.assert_frame_equal(_table(tmp_path / "run"), _table(tmp_path / "ref"))
