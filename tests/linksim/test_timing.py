"""Deterministic simulated receiver time (issue 17 item 1): ``receiver_time: model`` and device profiles.

The service time of every decode is predicted from its NFE and a device profile
(:mod:`linksim.timing`), so two runs with one seed write the same ``results.csv`` in every column but
``seconds`` (the measured wall time) — in-process, with ``executor: process``, and when a run is killed
with SIGKILL and resumed. Expected service times are computed here from the profile files read with
``yaml.safe_load`` (not through linksim's loader), and the expected timeline by a hand-written
queue recursion (one channel, one receiver, first come first served).
"""

from __future__ import annotations

import csv
import signal

import pytest
import yaml

from linksim.cli import main
from linksim.runner import run_scenario
from linksim.scenario import load_scenario, scenario_from_dict
from linksim.timing import PROFILE_DIR, load_profile

from .plugin_path import install
from .test_store_crash import _calls, _cli, _files, kill_after_points


def _shipped(name: str) -> dict:
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())


def _entry(profile: dict, kind: str, channel: str = "awgn", **when) -> dict:
    """The first entry of a profile (plain YAML data) for ``kind`` on ``channel`` whose ``when`` matches."""
    for e in profile["entries"]:
        if e["kind"] == kind and channel in e.get("channels", [channel]) and all(
                str(when.get(k)) == str(v) for k, v in e.get("when", {}).items()):
            return e
    raise AssertionError(f"no entry for {kind}")


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _without_seconds(path) -> list[list[str]]:
    """Every cell of ``results.csv`` as written (the exact text), header included, without ``seconds``."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    drop = rows[0].index("seconds")
    return [r[:drop] + r[drop + 1:] for r in rows]


def _fifo(arrivals, airtime, service):
    """Hand-computed timeline of one channel and one receiver serving one message at a time:
    ``[(t_done, queue)]`` in arrival order."""
    out, tx_free, rx_free = [], 0.0, 0.0
    for a in arrivals:
        tx_start = max(a, tx_free)
        tx_end = tx_free = tx_start + airtime
        rx_start = max(tx_end, rx_free)
        done = rx_free = rx_start + service
        out.append((done, (tx_start - a) + (rx_start - tx_end)))
    return out


BASE = {"seed": 11, "device": "cpu", "channel": {"kind": "awgn"}, "data": {"size": 32, "limit": 3},
        "sweep": {"csnr_db": [5], "cbr": ["1/24"]}, "metrics": ["psnr"]}


class TestServiceTimeIsTheProfilesPrediction:
    def test_deepjscc_on_the_shipped_profile(self, tmp_path):
        """Periodic frames far apart (no queueing): latency = airtime + the jscc entry's cost x pixels."""
        raw = dict(BASE, name="pj", traffic={"kind": "periodic", "interval_s": 1.0},
                   methods=[{"name": "deepjscc", "kind": "jscc"}])
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        e = _entry(_shipped("cpu-2core"), "jscc")
        air = 32 * 32 * 3 / 24 / 1.0e6  # 128 symbols at the default 1 Msymbol/s
        service = e["s_per_image"] * (32 * 32) / (e["size"] ** 2)
        for r in _rows(tmp_path / "results.csv"):
            assert float(r["airtime_s"]) == pytest.approx(air, rel=1e-12)
            assert float(r["latency_s"]) == pytest.approx(air + service, rel=1e-9)
            assert float(r["queue_s"]) == 0.0

    def test_hifi_diffcom_counts_its_nfe(self, tmp_path):
        """A diffusion receiver: (s_per_image + NFE x s_per_nfe) of the embedded-prior AWGN entry."""
        raw = dict(BASE, name="ph", data={"size": 32, "limit": 1}, traffic={"kind": "periodic", "interval_s": 1.0},
                   methods=[{"name": "deepjscc", "kind": "jscc"},
                            {"name": "hifi", "kind": "hifi_diffcom", "jscc": "deepjscc", "start_scale": 0.05}])
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        (row,) = [r for r in _rows(tmp_path / "results.csv") if r["method"] == "hifi"]
        nfe = int(row["nfe"])
        assert nfe > 1
        e = _entry(_shipped("cpu-2core"), "hifi_diffcom", prior="embedded")
        expected = (e["s_per_image"] + nfe * e["s_per_nfe"]) * (32 * 32) / e["size"] ** 2
        assert float(row["latency_s"]) - float(row["airtime_s"]) == pytest.approx(expected, rel=1e-9)

    def test_batch_traffic_scales_with_the_batch_exponent(self, tmp_path):
        """``batch``: B messages cross the channel one after the other, then one decode of B images
        lasting t(1) · B^α."""
        raw = dict(BASE, name="pb", methods=[{"name": "deepjscc", "kind": "jscc"}])
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        e = _entry(_shipped("cpu-2core"), "jscc")
        alpha = e.get("batch_exponent", _shipped("cpu-2core")["batch_exponent"])
        air = 128 / 1.0e6
        t1 = e["s_per_image"] * (32 * 32) / e["size"] ** 2
        for r in _rows(tmp_path / "results.csv"):
            assert float(r["t_done"]) == pytest.approx(3 * air + t1 * 3 ** alpha, rel=1e-9)

    def test_a_users_profile_and_a_queue(self, fake_methods, tmp_path):
        """A profile file given by path; Poisson arrivals that queue: every t_done and queueing delay
        equals the hand-computed FIFO timeline with the profile's service time."""
        prof = tmp_path / "mine.yaml"
        prof.write_text(yaml.safe_dump({
            "name": "mine", "status": "measured", "device": "test", "source": "written by the test",
            "entries": [{"kind": "fake_steps", "size": 16, "s_per_image": 0.01, "s_per_nfe": 0.002}]}))
        raw = dict(BASE, name="pu", data={"size": 32, "limit": 6}, device_profile=str(prof),
                   traffic={"kind": "poisson", "rate_hz": 20.0, "deadline_s": 0.1},
                   methods=[{"name": "f", "kind": "fake_steps", "num_steps": 7}])
        run_scenario(scenario_from_dict(raw), output=tmp_path / "out")
        rows = sorted(_rows(tmp_path / "out" / "results.csv"), key=lambda r: float(r["t_arrival"]))
        service = (0.01 + 7 * 0.002) * (32 * 32) / (16 * 16)  # 0.096 s: queues at 20 arrivals/s
        timeline = _fifo([float(r["t_arrival"]) for r in rows], float(rows[0]["airtime_s"]), service)
        assert any(q > 0 for _, q in timeline)
        for r, (done, queue) in zip(rows, timeline):
            assert float(r["t_done"]) == pytest.approx(done, rel=1e-9)
            assert float(r["queue_s"]) == pytest.approx(queue, abs=1e-12)
            assert r["deadline_missed"] == str(done - float(r["t_arrival"]) > 0.1)

    def test_entries_are_chosen_by_settings_and_channel(self):
        """The ADM prior's entry is not the embedded prior's; OFDM has its own entry."""
        from linksim.method_configs import HiFiDiffComConfig

        p = load_profile("cpu-2core")
        adm = p.entry_for("hifi_diffcom", HiFiDiffComConfig(name="h", kind="hifi_diffcom", prior="ffhq_10m"), "awgn")
        emb = p.entry_for("hifi_diffcom", HiFiDiffComConfig(name="h", kind="hifi_diffcom"), "tdl")
        raw = _shipped("cpu-2core")
        assert adm.s_per_nfe == _entry(raw, "hifi_diffcom", prior="ffhq_10m")["s_per_nfe"] and adm.size == 256
        assert emb.s_per_nfe == _entry(raw, "hifi_diffcom", "tdl", prior="embedded")["s_per_nfe"] and emb.size == 64
        # separation: with harq (or phy: abstract) the LDPC is decoded in the HARQ loop / not at all,
        # so the receiver's service time is the source decode alone: the `ideal` row's cost
        from linksim.method_configs import SeparationConfig

        ideal = _entry(raw, "ideal")
        plain = next(e for e in raw["entries"] if e["kind"] == "separation" and "when" not in e)
        for kw, want in (({}, plain), ({"harq": {"mode": "ir"}}, ideal), ({"phy": "abstract"}, ideal)):
            e = p.entry_for("separation", SeparationConfig(name="s", kind="separation", codec="hevc", **kw), "tdl")
            assert (e.s_per_image, e.batch_exponent) == (want["s_per_image"], want["batch_exponent"]), kw
        pub = _shipped("rtx4090-diffcom")
        assert pub["status"] == "published"
        e = _entry(pub, "hifi_diffcom", prior="ffhq_10m")
        # the paper's two anchors (171 steps 10.8 s, 9 steps 0.67 s per image) within rounding
        for nfe, seconds in ((171, 10.8), (9, 0.67)):
            assert e["s_per_image"] + nfe * e["s_per_nfe"] == pytest.approx(seconds, abs=0.005)


PLUG = {"name": "det", "seed": 4, "device": "cpu", "channel": {"kind": "awgn"},
        "data": {"source": "embedded", "size": 16, "limit": 2}, "sweep": {"cbr": [1], "csnr_db": [0, 10, 20]},
        "traffic": {"kind": "poisson", "rate_hz": 5.0, "deadline_s": 0.05},
        "methods": [{"name": "a", "kind": "plugin_image"}, {"name": "b", "kind": "plugin_image"}],
        "metrics": ["psnr"]}


class TestSameSeedSameTable:
    @pytest.fixture(autouse=True)
    def plugin(self):
        install()

    def test_in_process_and_process_executor(self, tmp_path):
        run_scenario(scenario_from_dict(PLUG), output=tmp_path / "a")
        run_scenario(scenario_from_dict(PLUG), output=tmp_path / "b")
        run_scenario(scenario_from_dict(dict(PLUG, executor="process", workers=1)), output=tmp_path / "p")
        a = _without_seconds(tmp_path / "a" / "results.csv")
        assert len(a) == 1 + 2 * 3 * 2
        assert a == _without_seconds(tmp_path / "b" / "results.csv")
        assert a == _without_seconds(tmp_path / "p" / "results.csv")
        # the timeline is modelled: the plug-in has no entry, so the profile's default one prices it
        assert len({r["t_done"] for r in _rows(tmp_path / "a" / "results.csv")}) > 1

    def test_killed_and_resumed(self, tmp_path):
        """SIGKILL from outside after the first finished job, resume: the same bytes as one run."""
        file, out, log = _files(tmp_path, PLUG)
        proc = _cli(file, out, log, wait=False, LINKSIM_TESTPLUGIN_SLEEP="0.3")
        kill_after_points(proc, out, 1)
        assert proc.returncode == -signal.SIGKILL
        assert 1 <= len(_calls(log)) < 6
        run_scenario(load_scenario(file), output=out)  # resumed
        assert len(_calls(log)) < 2 * 6  # only the unfinished jobs ran again
        run_scenario(load_scenario(file), output=tmp_path / "ref")
        assert _without_seconds(out / "results.csv") == _without_seconds(tmp_path / "ref" / "results.csv")


class TestBadInput:
    def _run(self, tmp_path, capsys, **changes):
        file = tmp_path / "s.yaml"
        file.write_text(yaml.safe_dump(dict(BASE, name="bad", methods=[{"name": "j", "kind": "jscc"}], **changes)))
        capsys.readouterr()
        code = main(["validate", str(file)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0
        return err

    def test_unknown_device_profile(self, tmp_path, capsys):
        err = self._run(tmp_path, capsys, device_profile="tpu-9000")
        assert "device_profile" in err and "tpu-9000" in err and "cpu-2core" in err

    def test_profile_without_an_entry_for_a_method(self, tmp_path, capsys):
        err = self._run(tmp_path, capsys, device_profile="rtx4090-diffcom")
        assert "methods[0].kind" in err and "'jscc'" in err and "receiver_time: measured" in err

    def test_measured_time_needs_no_entry(self, tmp_path, capsys):
        file = tmp_path / "s.yaml"
        file.write_text(yaml.safe_dump(dict(BASE, name="ok", methods=[{"name": "j", "kind": "jscc"}],
                                            device_profile="rtx4090-diffcom", receiver_time="measured")))
        assert main(["validate", str(file)]) == 0

    @pytest.mark.parametrize("deadline", [0, -0.1])
    def test_deadline_not_positive(self, tmp_path, capsys, deadline):
        err = self._run(tmp_path, capsys, traffic={"kind": "periodic", "interval_s": 0.1, "deadline_s": deadline})
        assert "traffic.deadline_s" in err and "greater than 0" in err

    def test_broken_profile_file(self, tmp_path, capsys):
        prof = tmp_path / "p.yaml"
        prof.write_text(yaml.safe_dump({"name": "p", "status": "guessed", "device": "x", "source": "y",
                                        "entries": [{"kind": "jscc", "size": 64}]}))
        err = self._run(tmp_path, capsys, device_profile=str(prof))
        assert "device_profile" in err and "status" in err
