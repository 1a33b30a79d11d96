"""The process executor when a job fails (issue 12 item 5): finished rows are stored, jobs not yet
started are cancelled (never run), the job's linksim error is re-raised as itself (issue 11 item 4),
and the rerun completes to the uninterrupted table. ``test_ray_executor.py`` runs the same check under ``executor: ray``.

The failing method comes from the test plug-in (``tests/linksim/plugin``), registered through the
``linksim.methods`` entry point; spawned workers find it because they inherit ``sys.path``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from linksim.errors import DataError
from linksim.runner import run_scenario
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


def check_failed_job(tmp_path, control, executor: str) -> None:
    """Job ebno_db=0 (the first submitted) fails at once with a linksim error (a DataError, as for
    an image that became unreadable after validation); the others sleep 3 s each.

    The error arrives as itself, equal to the in-process one (not ``BrokenProcessPool`` /
    ``TypeError`` / ``RayTaskError`` with the worker's traceback), so the CLI prints its one line.

    The executors keep at most ``workers`` (2) jobs submitted and submit none after a failure, so
    after the failing job ended at most ``workers − 1`` jobs start (those already submitted beside
    it); without cancellation every job still queued would start. Which job a worker takes first
    depends on timing (a Ray worker still importing torch takes the failing job late), so that
    count, not the number of jobs that ran, is what is asserted.

    :param control: the plug-in's control file (``LINKSIM_TESTPLUGIN_CONTROL``)
    """
    install()
    log = tmp_path / "calls.log"
    raw = dict(RAW, executor=executor)
    times = tmp_path / "times.log"
    control.write_text(json.dumps({"log": str(log), "times": str(times), "sleep": "3", "fail": "0.0",
                                   "error": "data"}))
    with pytest.raises(DataError) as info:
        run_scenario(scenario_from_dict(raw), output=tmp_path / "run")
    assert type(info.value) is DataError and str(info.value) == "image-0.0.png: injected: cannot decode the image"
    ran = log.read_text().splitlines()
    assert "a:0.0" in ran
    stamps = [line.split() for line in times.read_text().splitlines()]
    failed_at = next(float(t) for what, v, t in stamps if what == "end" and v == "0.0")
    late = [v for what, v, t in stamps if what == "start" and float(t) > failed_at]
    assert len(late) <= RAW["workers"] - 1, f"pending jobs were not cancelled: {late} started after the failure"
    finished = {r["point"] for r in read_points(tmp_path / "run" / "points.jsonl")}
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(rows["point"]) == finished and "ebno_db=0" not in finished  # finished jobs stored
    assert len(finished) == len(ran) - 1  # every job that ran and did not fail was stored
    control.write_text(json.dumps({"log": str(log), "sleep": "0"}))
    run_scenario(scenario_from_dict(raw), output=tmp_path / "run")
    assert len(log.read_text().splitlines()) == len(ran) + 8 - len(finished)  # only the rest ran
    run_scenario(scenario_from_dict(dict(RAW, executor="inprocess")), output=tmp_path / "ref")
    pd.testing.assert_frame_equal(_table(tmp_path / "run"), _table(tmp_path / "ref"))


def check_one_line_error(tmp_path, control, executor: str, capsys) -> None:
    """``linksim run`` prints a linksim error raised inside a worker as its one line, exit 2 (the
    process executor's error object is checked in :func:`check_failed_job`)."""
    from linksim.cli import main

    install()
    control.write_text(json.dumps({"fail": "1.0", "error": "data"}))
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(dict(RAW, executor=executor, output=str(tmp_path / "out"))))
    capsys.readouterr()
    assert main(["run", str(path), "--no-figures"]) == 2
    err = capsys.readouterr().err
    # (the progress bar shares stderr; the error is its last line and the only other output)
    assert err.strip().splitlines()[-1] == "error: image-1.0.png: injected: cannot decode the image", err
    assert err.count("error") == 1 and "Traceback" not in err and "RayTaskError" not in err, err


@pytest.mark.slow  # spawns 2 workers that import torch (~20 s on 2 busy cores)
def test_failed_job_under_process_executor(tmp_path, monkeypatch):
    control = tmp_path / "control.json"
    monkeypatch.setenv("LINKSIM_TESTPLUGIN_CONTROL", str(control))
    check_failed_job(tmp_path, control, "process")
