"""Crash safety of the results store (issue 12 item 1): a real ``linksim run`` killed with SIGKILL.

Each test kills a subprocess at one instant — inside a write, forced through the test-only
``LINKSIM_TEST_KILL_IN_WRITE`` hook (half of the bytes on disk, then SIGKILL), or from outside while
jobs run — then resumes the folder and checks that the table equals an uninterrupted run's and that
only the job that was running is recomputed. Torn-file fixtures check the recovery alone.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from linksim.runner import run_scenario
from linksim.scenario import scenario_from_dict
from linksim.store import FAULT_ENV

from .plugin_path import install, subprocess_env

#: 2 methods x 3 points of a fake study (6 jobs, one row each) + an image method writing PNGs
PHY = {
    "name": "crash", "seed": 3, "device": "cpu", "channel": {"kind": "awgn"},
    "sweep": {"ebno_db": [0, 1, 2]},
    "methods": [{"name": "a", "kind": "plugin_study"}, {"name": "b", "kind": "plugin_study", "scale": 2.0}],
}
IMG = {
    "name": "crashimg", "seed": 3, "device": "cpu", "channel": {"kind": "awgn"},
    "data": {"source": "embedded", "size": 16, "limit": 2},
    "sweep": {"csnr_db": [10, 20], "cbr": [1]},
    "methods": [{"name": "ident", "kind": "plugin_image"}], "metrics": ["psnr"], "save_images": True,
}
#: the column that holds measured wall-clock time (the simulated timeline is modelled: receiver_time: model)
TIMES = ["seconds"]
CLI = "import sys; from linksim.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(autouse=True)
def plugin():
    install()


def _table(folder):
    df = pd.read_csv(folder / "results.csv")
    return df.drop(columns=[c for c in TIMES if c in df]).sort_values(["method", "point"] + (
        ["image"] if "image" in df else [])).reset_index(drop=True)


def _files(tmp_path, raw):
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(raw))
    return file, tmp_path / "out", tmp_path / "calls.log"


def _cli(file, out, log, wait=True, **env):
    cmd = [sys.executable, "-c", CLI, "run", str(file), "--output", str(out), "--no-figures"]
    proc = subprocess.Popen(cmd, env=subprocess_env(LINKSIM_TESTPLUGIN_LOG=str(log), **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        proc.communicate(timeout=120)
    return proc


def _calls(log):
    return log.read_text().splitlines() if log.exists() else []


def kill_after_points(proc, out, n: int, timeout: float = 90.0) -> None:
    """SIGKILL ``proc`` (a ``linksim run`` into ``out``) once ``out/points.jsonl`` holds ``n``
    finished jobs (or after ``timeout`` s), and reap it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pts = out / "points.jsonl"
        if pts.exists() and pts.read_text().count("\n") >= n:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def _resume_and_check(tmp_path, raw, out, log, caplog, torn: str | None, recomputed: int):
    """Resume in-process: one warning for the torn file (if any), ``recomputed`` jobs run again,
    and the same table as an uninterrupted run."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
    before = len(_calls(log))
    with caplog.at_level(logging.WARNING, logger="linksim.store"):
        run_scenario(scenario_from_dict(raw), output=out)
    warned = [r.getMessage() for r in caplog.records if r.name == "linksim.store"]
    if torn:
        assert len(warned) == 1 and torn in warned[0] and "torn" in warned[0]
    else:
        assert warned == []
    assert len(_calls(log)) - before == recomputed
    mp.undo()
    run_scenario(scenario_from_dict(raw), output=tmp_path / "ref", fresh=True)
    pd.testing.assert_frame_equal(_table(out), _table(tmp_path / "ref"))
    assert not [p.name for p in out.rglob(".*tmp*")]  # no stale temporary file is left
    return warned


@pytest.mark.parametrize("fault, torn, ran_before, recomputed", [
    ("results.csv:1", None, 0, 6),            # inside the header's write (temporary file)
    ("results.csv:3", "results.csv", 2, 5),   # mid-row of the 2nd job (header = write 1)
    ("points.jsonl:2", "points.jsonl", 2, 5),  # mid-line of the 2nd job's record (rows are on disk)
    ("summary.csv:1", None, 6, 0),            # every job finished, summary half-written
])
def test_kill_inside_a_write(tmp_path, caplog, fault, torn, ran_before, recomputed):
    file, out, log = _files(tmp_path, PHY)
    proc = _cli(file, out, log, **{FAULT_ENV: fault})
    assert proc.returncode == -signal.SIGKILL
    assert len(_calls(log)) == ran_before
    if torn:  # the file really is torn: its last line has no newline
        assert not (out / torn).read_bytes().endswith(b"\n")
    _resume_and_check(tmp_path, PHY, out, log, caplog, torn, recomputed)


def test_kill_inside_a_png_write(tmp_path, caplog):
    """Half a reconstruction PNG on disk (never renamed into place): that job reruns, no torn PNG."""
    from linksim.data import load_images
    from PIL import Image

    first = load_images(scenario_from_dict(IMG).data).names[0]
    file, out, log = _files(tmp_path, IMG)
    # writes of <first>.png: recon/original (1), job 1's reconstruction (2), job 2's (3)
    proc = _cli(file, out, log, **{FAULT_ENV: f"{first}.png:3"})
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in out.rglob(".*tmp*")]  # the half-written temporary PNG is there
    assert len(_calls(log)) == 2
    _resume_and_check(tmp_path, IMG, out, log, caplog, None, 1)
    for p in out.rglob("*.png"):
        Image.open(p).load()  # every PNG decodes


def test_kill_from_outside_while_jobs_run(tmp_path, caplog):
    """SIGKILL at an arbitrary instant (after the 2nd finished job): the rerun completes."""
    file, out, log = _files(tmp_path, PHY)
    proc = _cli(file, out, log, wait=False, LINKSIM_TESTPLUGIN_SLEEP="0.4")
    kill_after_points(proc, out, 2)
    ran = len(_calls(log))
    assert 2 <= ran < 6
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
        run_scenario(scenario_from_dict(PHY), output=out)
    assert len(_calls(log)) - ran <= 6 - 2  # at most the job that was running is lost
    run_scenario(scenario_from_dict(PHY), output=tmp_path / "ref", fresh=True)
    pd.testing.assert_frame_equal(_table(out), _table(tmp_path / "ref"))


class TestTornFixtures:
    """Recovery alone, on files torn by hand (no subprocess)."""

    def _done(self, tmp_path):
        raw = dict(PHY, sweep={"ebno_db": [0, 1]})
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        return raw

    def test_torn_jsonl_tail(self, tmp_path, caplog, monkeypatch):
        raw = self._done(tmp_path)
        pts = tmp_path / "points.jsonl"
        data = pts.read_bytes()
        pts.write_bytes(data[: len(data) - 20])  # last record cut mid-line (the probe's crash)
        log = tmp_path / "calls.log"
        monkeypatch.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            run_scenario(scenario_from_dict(raw), output=tmp_path)
        assert _calls(log) == ["b:1.0"]  # only the torn job is recomputed
        assert [r.name for r in caplog.records].count("linksim.store") == 1
        assert len(pd.read_csv(tmp_path / "results.csv")) == 4
        assert pts.read_text().count("\n") == 4 and pts.read_bytes().endswith(b"\n")

    def test_torn_csv_row(self, tmp_path, caplog, monkeypatch):
        raw = self._done(tmp_path)
        res = tmp_path / "results.csv"
        lines = res.read_text().splitlines(keepends=True)
        # the last job's row torn mid-way, its record never written
        res.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        pts = tmp_path / "points.jsonl"
        pts.write_text("".join(pts.read_text().splitlines(keepends=True)[:-1]))
        log = tmp_path / "calls.log"
        monkeypatch.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            run_scenario(scenario_from_dict(raw), output=tmp_path)
        assert _calls(log) == ["b:1.0"]
        assert [r.name for r in caplog.records].count("linksim.store") == 1
        assert len(pd.read_csv(tmp_path / "results.csv")) == 4

    def test_damaged_middle_line_is_one_line_error(self, tmp_path):
        from linksim.errors import LinksimError

        raw = self._done(tmp_path)
        pts = tmp_path / "points.jsonl"
        lines = pts.read_text().splitlines(keepends=True)
        pts.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
        with pytest.raises(LinksimError, match=r"points.jsonl: line 2 .*--fresh"):
            run_scenario(scenario_from_dict(raw), output=tmp_path)

    def test_finished_record_without_rows_is_recomputed(self, tmp_path, monkeypatch):
        raw = self._done(tmp_path)
        res = tmp_path / "results.csv"
        res.write_text("".join(res.read_text().splitlines(keepends=True)[:-1]))  # last job's row lost
        log = tmp_path / "calls.log"
        monkeypatch.setenv("LINKSIM_TESTPLUGIN_LOG", str(log))
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        assert _calls(log) == ["b:1.0"] and len(pd.read_csv(res)) == 4
