"""Sweep expansion, per-point seeds, the SimPy engine, resume, and an end-to-end phy_ber run."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest
import yaml

from linksim.cli import main
from linksim.des import Message, airtime_s, arrival_times, simulate
from linksim.runner import run_scenario
from linksim.scenario import NumerologyConfig, TrafficConfig, scenario_from_dict
from linksim.sweep import expand, point_seed

BASE = {
    "name": "t",
    "seed": 7,
    "device": "cpu",
    "channel": {"kind": "awgn"},
    "sweep": {"channel.kind": ["awgn", "rayleigh"], "ebno_db": [0, 1, 2]},
    "methods": [{"name": "a", "kind": "fake_study"}, {"name": "b", "kind": "fake_study", "scale": 2.0}],
}


class TestSweep:
    def test_cartesian_count_and_resolved_channel(self, fake_methods):
        scn = scenario_from_dict(BASE)
        points = expand(scn)
        assert len(points) == 2 * 3
        assert [p.channel.kind for p in points] == ["awgn"] * 3 + ["rayleigh"] * 3
        assert points[4].key == "channel.kind=rayleigh|ebno_db=1"
        assert len({p.key for p in points}) == 6 and len({p.seed for p in points}) == 6

    def test_seeds_do_not_depend_on_axis_order(self, fake_methods):
        swapped = dict(BASE, sweep={"ebno_db": [2, 1, 0], "channel.kind": ["rayleigh", "awgn"]})
        a = {p.key: p.seed for p in expand(scenario_from_dict(BASE))}
        b = {p.key: p.seed for p in expand(scenario_from_dict(swapped))}
        assert a == b
        assert a["channel.kind=awgn|ebno_db=0"] == point_seed(7, "channel.kind=awgn|ebno_db=0")
        other = {p.key: p.seed for p in expand(scenario_from_dict(dict(BASE, seed=8)))}
        assert not set(a.values()) & set(other.values())

    def test_swept_kind_drops_keys_the_kind_lacks(self, fake_methods):
        raw = dict(BASE, channel={"kind": "rayleigh", "coherence_symbols": 8})
        points = expand(scenario_from_dict(raw))
        assert points[0].channel.kind == "awgn" and points[-1].channel.coherence_symbols == 8

    def test_no_sweep_is_one_point(self, fake_methods):
        raw = dict(BASE, sweep={"ebno_db": 3})
        (p,) = expand(scenario_from_dict(raw))
        assert p.key == "ebno_db=3" and p.ebno_db == 3.0


class TestSimPyEngine:
    def test_queueing_matches_hand_computation(self):
        # periodic arrivals every 1 s, 0.25 s airtime, receiver needs 1.5 s per message:
        # message i arrives at i, is on air [i, i+0.25], waits for the receiver 0.5·i s,
        # and is done at 0.25 + 1.5·(i+1)  ->  latency 1.75 + 0.5·i.
        traffic = TrafficConfig(kind="periodic", interval_s=1.0)
        msgs = [Message(i, i, t, airtime_s=0.25, deadline_s=2.5) for i, t in enumerate(arrival_times(traffic, 4, 0))]
        served = []

        def serve(batch):
            served.append([m.id for m in batch])
            return [m.id * 10 for m in batch], 123.0  # measured seconds are overridden below

        simulate(msgs, serve, batch_all=False, max_batch=1, service_time=lambda b: 1.5 * len(b))
        assert served == [[0], [1], [2], [3]]
        for i, m in enumerate(msgs):
            assert m.t_arrival == pytest.approx(i)
            assert m.t_tx_end == pytest.approx(i + 0.25)
            assert m.t_done == pytest.approx(0.25 + 1.5 * (i + 1))
            assert m.latency_s == pytest.approx(1.75 + 0.5 * i)
            assert m.queue_s == pytest.approx(0.5 * i)
            assert m.result == i * 10
        assert [m.deadline_missed for m in msgs] == [False, False, True, True]

    def test_channel_contention_and_receiver_batching(self):
        # three messages at t=0, airtime 1 s each -> on air back to back; the receiver
        # (max_batch 2, 0.1 s per message) takes m0 at 1, then m1 at 2, then m2 at 3.
        msgs = [Message(i, i, 0.0, airtime_s=1.0) for i in range(3)]
        simulate(msgs, lambda b: ([None] * len(b), 0.0), batch_all=False, max_batch=2,
                 service_time=lambda b: 0.1 * len(b))
        assert [m.t_tx_start for m in msgs] == pytest.approx([0, 1, 2])
        assert [m.t_done for m in msgs] == pytest.approx([1.1, 2.1, 3.1])

    def test_monte_carlo_degenerate_case(self):
        traffic = TrafficConfig()  # batch
        msgs = [Message(i, i, t) for i, t in enumerate(arrival_times(traffic, 5, 0))]
        batches = []
        simulate(msgs, lambda b: (batches.append(len(b)) or [None] * len(b), 0.25), batch_all=True)
        assert all(m.t_arrival == 0.0 for m in msgs)
        assert batches == [5]
        assert all(m.t_done == pytest.approx(0.25) for m in msgs)  # measured seconds = service time

    def test_poisson_arrivals_seeded(self):
        tr = TrafficConfig(kind="poisson", rate_hz=4.0)
        a, b = arrival_times(tr, 2000, 1), arrival_times(tr, 2000, 1)
        assert a == b and a[0] == 0.0
        gaps = [y - x for x, y in zip(a, a[1:])]
        assert sum(gaps) / len(gaps) == pytest.approx(0.25, rel=0.1)  # mean 1/rate, 2000 draws

    def test_airtime_ofdm_numerology(self):
        from linksim.channels import OFDMConfig
        from linksim.phy.chains import grid_info

        ch = OFDMConfig(cp=16, data_symbols=13, pilot_symbols=1)
        grid = grid_info(ch.link_config(), 13 * 64)  # 64 subcarriers, one frame of 14 symbols
        t = airtime_s(grid, ch, NumerologyConfig(symbols_per_slot=14))
        assert t == pytest.approx(14 * (64 + 16) / (64 * 15e3))  # one slot at 15 kHz, CP included


def _table(path):
    df = pd.read_csv(path)
    return df.drop(columns=["seconds"]).sort_values(["method", "point"]).reset_index(drop=True)


class TestResume:
    def test_killed_sweep_resumes_without_recomputing(self, fake_methods, tmp_path):
        scn = scenario_from_dict(BASE)
        fake_methods.FAIL_AT["ebno_db"] = 2.0  # method a dies at its third point
        with pytest.raises(RuntimeError, match="injected"):
            run_scenario(scn, output=tmp_path / "run")
        first = list(fake_methods.CALLS)
        assert first == ["a:0.0", "a:1.0", "a:2.0"]
        with open(tmp_path / "run" / "results.csv") as f:
            assert len(list(csv.DictReader(f))) == 2  # the finished points are on disk
        fake_methods.FAIL_AT["ebno_db"] = None
        fake_methods.CALLS.clear()
        run_scenario(scn, output=tmp_path / "run")
        assert len(fake_methods.CALLS) == 12 - 2  # finished points were not recomputed
        fake_methods.CALLS.clear()
        run_scenario(scn, output=tmp_path / "ref", fresh=True)
        assert len(fake_methods.CALLS) == 12
        resumed, ref = _table(tmp_path / "run" / "results.csv"), _table(tmp_path / "ref" / "results.csv")
        assert len(ref) == 12
        pd.testing.assert_frame_equal(resumed, ref)
        assert (ref.loc[ref.method == "b", "ber"].to_numpy() == 2 * ref.loc[ref.method == "a", "ber"].to_numpy()).all()

    def test_orphan_rows_of_unfinished_job_are_dropped(self, fake_methods, tmp_path):
        scn = scenario_from_dict(dict(BASE, sweep={"ebno_db": [0, 1]}))
        run_scenario(scn, output=tmp_path)
        lines = (tmp_path / "points.jsonl").read_text().splitlines()
        (tmp_path / "points.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # last job "not finished"
        fake_methods.CALLS.clear()
        run_scenario(scn, output=tmp_path)
        assert fake_methods.CALLS == ["b:1.0"]
        assert len(pd.read_csv(tmp_path / "results.csv")) == 4

    def test_resume_into_other_scenario_refused(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(dict(BASE, sweep={"ebno_db": [0]})), output=tmp_path)
        from linksim.errors import LinksimError

        with pytest.raises(LinksimError, match="different scenario.*--fresh"):
            run_scenario(scenario_from_dict(dict(BASE, seed=1, sweep={"ebno_db": [0]})), output=tmp_path)

    def test_resume_ignores_execution_keys_and_newer_defaults(self, fake_methods, tmp_path):
        raw = dict(BASE, sweep={"ebno_db": [0, 1]})
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        # a folder written before the `threads` key existed: its scenario.yaml lacks the key
        saved = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
        saved.pop("threads")
        (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(saved))
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(dict(raw, threads=1, workers=3)), output=tmp_path)
        assert fake_methods.CALLS == []  # everything resumed, nothing recomputed


@pytest.mark.slow  # spawns two interpreters that import torch + Sionna (~40 s on 2 busy cores)
def test_process_executor_gives_same_numbers(fake_methods, tmp_path):
    pytest.importorskip("concurrent.futures")
    raw = dict(BASE, sweep={"ebno_db": [0, 1]}, methods=[{"name": "q", "kind": "phy_ber", "max_blocks": 16,
                                                         "batch_size": 8, "block_bits": 64}])
    run_scenario(scenario_from_dict(raw), output=tmp_path / "a")
    run_scenario(scenario_from_dict(dict(raw, executor="process", workers=2)), output=tmp_path / "b")
    pd.testing.assert_frame_equal(_table(tmp_path / "a" / "results.csv"), _table(tmp_path / "b" / "results.csv"))


def test_phy_ber_end_to_end(tmp_path, capsys):
    """QPSK over AWGN through the CLI: required columns, BER within the binomial band of theory."""
    from linksim.phy.theory import ber_mqam_awgn

    file = tmp_path / "s.yaml"
    file.write_text(
        "name: e2e\nseed: 1\ndevice: cpu\nchannel: {kind: awgn}\nsweep: {ebno_db: [2, 6]}\n"
        "methods: [{name: qpsk, kind: phy_ber, modulation: qpsk, batch_size: 8, max_bit_errors: 400}]\n"
    )
    assert main(["run", str(file), "--output", str(tmp_path / "out")]) == 0
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    for col in ("method", "kind", "channel", "ebno_db", "csnr_db", "ber", "bler", "bits", "bit_errors",
                "blocks", "block_errors", "seconds", "seed"):
        assert col in df.columns
    assert len(df) == 2
    for _, r in df.iterrows():
        p = float(ber_mqam_awgn(r.ebno_db, 4))
        assert r.bit_errors >= 400
        sigma = math.sqrt(p * (1 - p) / r.bits)
        assert abs(r.ber - p) < 4 * sigma + 0.02 * p  # 4 sigma binomial band (bits ~independent)
        assert r.csnr_db == pytest.approx(r.ebno_db + 10 * math.log10(2))
    assert (tmp_path / "out" / "figures" / "ber.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "summary.csv").exists() and (tmp_path / "out" / "run.json").exists()
    # phy-only report.md: the BER table (one row per method x point, as in results.csv) and the figure
    report = (tmp_path / "out" / "report.md").read_text()
    table = [ln for ln in report.splitlines() if ln.startswith("| qpsk |")]
    assert len(table) == 2 and f"{df.ber.iloc[0]:.3e}" in table[0] and "![BER](figures/ber.png)" in report
    # rerun resumes: nothing recomputed, same table
    before = _table(tmp_path / "out" / "results.csv")
    assert main(["run", str(file), "--output", str(tmp_path / "out")]) == 0
    pd.testing.assert_frame_equal(before, _table(tmp_path / "out" / "results.csv"))


def test_phy_ber_channel_uses_are_data_symbols(tmp_path):
    """phy_ber counts channel uses as image rows do (issue 13): the data symbols of one example, pilots
    and cyclic prefix only in `overhead`. 2 LDPC codewords of n = 1024 on 16-QAM = 512 data symbols on
    an OFDM frame of 16 data symbols x 32 subcarriers, + 1 pilot symbol (32 REs), CP 12 on 17 symbols."""
    raw = {"name": "cu", "seed": 0, "device": "cpu",
           "channel": {"kind": "ofdm", "paths": 4, "cp": 12, "data_symbols": 16, "pilot_symbols": 1},
           "sweep": {"ebno_db": [20]},
           "methods": [{"kind": "phy_ber", "modulation": "16qam", "coding": "ldpc", "k": 512, "n": 1024,
                        "codewords": 2, "batch_size": 1, "max_blocks": 2, "max_bit_errors": None}]}
    out = run_scenario(scenario_from_dict(raw), output=tmp_path / "out")
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["channel_uses"] == 2 * 1024 // 4
    assert row["overhead"] == pytest.approx((32 + 17 * 12) / 512)


def test_list_shows_registered_names(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("awgn", "rayleigh", "ofdm", "tdl", "phy_ber", "psnr"):
        assert name in out


def test_image_method_end_to_end(fake_methods, tmp_path):
    """A fake image method (identity codec + noise N0 = 10^(-CSNR/10)) through the image path."""
    raw = {
        "name": "img", "seed": 0, "device": "cpu",
        "data": {"source": "embedded", "size": 32, "limit": 3},
        "channel": {"kind": "awgn"},
        "sweep": {"csnr_db": [20], "cbr": [1]},
        "methods": [{"name": "ident", "kind": "fake_image"}],
        "metrics": ["psnr"],
        "traffic": {"kind": "periodic", "interval_s": 0.01},
        "save_images": True,
        "output": str(tmp_path),
    }
    run_scenario(scenario_from_dict(raw))
    df = pd.read_csv(tmp_path / "results.csv")
    for col in ("method", "kind", "channel", "csnr_db", "cbr", "image", "psnr", "ms_ssim", "lpips", "dists",
                "outage", "payload_bits", "channel_uses", "seconds", "seed", "latency_s", "queue_s"):
        assert col in df.columns
    assert len(df) == 3 and (df.channel_uses == 3 * 32 * 32).all()
    # clipping to [0, 1] only shrinks the error, so MSE <= N0 = 0.01 -> PSNR >= 20 dB
    assert (df.psnr >= 20).all() and (df.psnr < 26).all()
    # 3072 symbols at 1 MHz on a single carrier = 3.072 ms airtime per image
    assert df.t_arrival.tolist() == pytest.approx([0, 0.01, 0.02])
    assert (df.latency_s >= 3.072e-3).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.psnr.iloc[0] == pytest.approx(df.psnr.mean()) and summary.images.iloc[0] == 3
    assert len(list((tmp_path / "recon" / "ident").rglob("*.png"))) == 3
