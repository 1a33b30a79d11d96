"""HARQ through the engine: airtime follows the transmissions, the channel is held through the
feedback waits, and the per-image columns (transmissions, residual_bler, goodput) follow their
definitions (README, linksim.docs.RESULTS_COLUMNS)."""

import math

import pytest
import torch

from linksim import api
from linksim.cli import main
from linksim.errors import ScenarioError
from linksim.scenario import scenario_from_dict

RATE_HZ = 1e6  # numerology.symbol_rate_hz: flat-channel airtime = N / rate
FEEDBACK = 0.003


def _scenario(tmp_path, methods, csnr=1.0):
    return {"name": "harq", "seed": 3, "device": "cpu",
            "data": {"source": "embedded", "size": 64, "limit": 2},
            "channel": {"kind": "awgn"},
            "sweep": {"csnr_db": [csnr], "cbr": ["1/6"]},
            # the second image arrives 1 ms after the first: it waits while the first is retransmitted
            "traffic": {"kind": "periodic", "interval_s": 0.001},
            "numerology": {"symbol_rate_hz": RATE_HZ},
            "methods": methods, "metrics": ["psnr"], "output": str(tmp_path / "out")}


def _method(name, **kw):
    return {"name": name, "kind": "separation", "codec": "jpeg", "modulation": "qpsk", "code_rate": 0.5, **kw}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harq")
    scn = _scenario(tmp, [_method("plain"), _method("chase", harq={"mode": "chase", "max_tx": 4,
                                                                    "feedback_delay_s": FEEDBACK})])
    return api.run(scn, fresh=True, figures=False).rows


def test_airtime_and_channel_hold_follow_the_transmissions(rows):
    n = 64 * 64 * 3 // 6  # channel uses per image (CBR 1/6)
    chase = rows[rows.method == "chase"].sort_values("t_arrival").reset_index(drop=True)
    plain = rows[rows.method == "plain"]
    assert (plain.transmissions == 1).all() and (plain.airtime_s.to_numpy() == pytest.approx(n / RATE_HZ))
    # at 1 dB QPSK r=1/2 fails some first transmissions and HARQ recovers them
    assert (plain.codeword_errors > 0).any() and (chase.transmissions > 1).any()
    assert (chase.airtime_s.to_numpy() == pytest.approx((n / RATE_HZ) * chase.transmissions.to_numpy()))
    first, second = chase.iloc[0], chase.iloc[1]
    # the first message holds the channel for its airtime plus >= one feedback wait per extra round;
    # the second (arriving 1 ms later) starts only after that
    rounds_min = math.ceil(first.transmissions)  # a mean over codewords; rounds >= its ceiling
    hold_min = first.airtime_s + (rounds_min - 1) * FEEDBACK
    assert second.t_arrival + second.queue_s >= hold_min - 1e-12 or first.transmissions == 1
    assert first.latency_s >= hold_min - 1e-12


def test_columns_follow_their_definitions(rows):
    n = 64 * 64 * 3 // 6
    c = 2 * n // 1024  # QPSK: 2 bits per symbol, codewords of n_target = 1024 bits
    for _, r in rows.iterrows():
        assert r.residual_bler == pytest.approx(r.codeword_errors / c)
        delivered = bool(r.crc_ok) and not bool(r.outage)
        assert r.goodput == pytest.approx(r.payload_bits * delivered / (r.channel_uses * r.transmissions))
        assert 1 <= r.transmissions <= 4
    chase = rows[rows.method == "chase"]
    assert chase.residual_bler.mean() < rows[rows.method == "plain"].residual_bler.mean()


def test_harq_on_a_jscc_method_is_one_line_exit_2(tmp_path, capsys):
    import yaml

    raw = _scenario(tmp_path, [{"name": "deepjscc", "kind": "jscc", "harq": {"mode": "chase"}}])
    with pytest.raises(ScenarioError, match=r"methods\[0\]\.harq.*a key of kind separation"):
        scenario_from_dict(raw)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "harq" in err


@pytest.mark.parametrize("bad, key", [({"mode": "hybrid"}, "mode"), ({"max_tx": 0}, "max_tx"),
                                      ({"feedback_delay_s": -1}, "feedback_delay_s")])
def test_bad_harq_settings(tmp_path, bad, key):
    with pytest.raises(ScenarioError, match=rf"methods\[0\]\.harq\.{key}"):
        scenario_from_dict(_scenario(tmp_path, [_method("x", harq=bad)]))


def _tdl_rounds(tmp_path, monkeypatch, speed):
    """Every channel draw of a HARQ run over a TDL at -10 dB (each round fails: max_tx rounds),
    one image at t = 0: ``(rows, [(sample times [T] of the draw, h)])`` in call order."""
    from linksim.phy.chains import DigitalChain

    seen, generate = [], DigitalChain.generate

    def spy(self, batch_size, generator, times=None):
        real = generate(self, batch_size, generator, times)
        seen.append((None if real.times is None else real.times[0].clone(), real.h.clone()))
        return real

    monkeypatch.setattr(DigitalChain, "generate", spy)
    raw = _scenario(tmp_path, [_method("ir", harq={"mode": "ir", "max_tx": 3, "feedback_delay_s": FEEDBACK})],
                    csnr=-10.0)
    raw["data"] = {"source": "embedded", "size": 32, "limit": 1}
    raw["channel"] = {"kind": "tdl", "speed": speed, "carrier_frequency": 3.5e9, "subcarriers": 32,
                      "data_symbols": 8, "cp": 4, "estimator": "perfect"}
    raw.pop("numerology")
    rows = api.run(raw, fresh=True, figures=False).rows
    return rows, seen


def test_retransmissions_sample_a_moving_channel_when_their_round_starts(tmp_path, monkeypatch):
    """Round t of a message sent at t0 starts after t whole transmissions (all codewords fail) and
    t feedback waits: its channel is the same process sampled from t0 + t (A + feedback) on, A the
    airtime of one transmission (the row's airtime over its transmissions, the DES's accounting)."""
    rows, seen = _tdl_rounds(tmp_path, monkeypatch, speed=30.0)
    (row,) = rows.itertuples()
    assert row.transmissions == 3 and len(seen) == 3
    a = row.airtime_s / row.transmissions
    starts = [float(times[0]) for times, _ in seen]
    assert starts == pytest.approx([row.t_arrival + t * (a + FEEDBACK) for t in range(3)], abs=1e-12)
    # within a round the samples advance by the OFDM symbol duration, as in the first round
    steps = [times.diff() for times, _ in seen]
    torch.testing.assert_close(steps[2], steps[0])
    # 30 m/s at 3.5 GHz: f_D = 350 Hz, a round trip of > 3 ms decorrelates the taps
    h0, h2 = seen[0][1], seen[2][1]
    assert float((h2 - h0).abs().mean()) > 0.2 * float(h0.abs().mean())


def test_retransmissions_over_a_static_channel_see_its_realisation(tmp_path, monkeypatch):
    """A static TDL is block fading over the HARQ process: one draw, reused by every round."""
    rows, seen = _tdl_rounds(tmp_path, monkeypatch, speed=0.0)
    assert rows.transmissions.iloc[0] == 3
    assert len(seen) == 1 and seen[0][0] is None
