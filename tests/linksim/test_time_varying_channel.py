"""The engine hands a message's transmission time to the channel (issue 17 item 3): with a moving
TDL every message samples one continuous process per channel draw at its own ``t_tx_start``;
the scenario keys ``channel.speed`` / ``carrier_frequency`` validate, and contradicting keys exit 2.

A test-only image method sends random symbols over the point's real :class:`AnalogChain` and
records what its channel saw (the transmit times of the context and the realisation).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
import pytest
import torch

from linksim.codecs.base import Decoded, ImageMethod, RxSignal, TxSignal
from linksim.errors import ScenarioError
from linksim.phy.chains import AnalogChain, grid_info
from linksim.phy.links import TransmitTimes, current_transmit_times
from linksim.registry import METHODS
from linksim.runner import run_scenario
from linksim.scenario import MethodConfig, scenario_from_dict

SEEN: list[tuple[TransmitTimes, torch.Tensor, torch.Tensor | None]] = []


class ProbeConfig(MethodConfig):
    kind: Literal["channel_probe"] = "channel_probe"


class ProbeMethod(ImageMethod):
    def __init__(self, config, point):
        super().__init__(config, point)
        self.chain = AnalogChain(point.link, point.num_symbols, precision="double")

    def grid(self):
        return grid_info(self.point.link, self.point.num_symbols)

    def encode(self, images, generator):
        z = torch.randn(images.shape[0], self.point.num_symbols, 2, generator=generator, dtype=torch.float64)
        return TxSignal(x=torch.view_as_complex(z), meta={"images": images})

    def channel(self, tx, channel_generator, noise_generator):
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        SEEN.append((current_transmit_times(), real.h.clone(), real.times))
        y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        return RxSignal(y=y, state=state, tx_meta=tx.meta)

    def decode(self, rx, generator):
        return Decoded(images=rx.tx_meta["images"])


@pytest.fixture
def probe():
    METHODS.add("channel_probe", ProbeMethod, ProbeConfig, "test probe of the channel a message sees")
    SEEN.clear()
    yield SEEN
    METHODS.remove("channel_probe")


def _raw(tmp_path, speed=30.0, **extra):
    raw = {
        "name": "moving", "seed": 3, "device": "cpu",
        "data": {"source": "embedded", "size": 32, "limit": 2},
        "channel": {"kind": "tdl", "speed": speed, "carrier_frequency": 3.5e9, "subcarriers": 16,
                    "data_symbols": 4, "cp": 4, "estimator": "perfect", "draws": 2},
        "sweep": {"csnr_db": [20], "cbr": ["1/24"]},  # 128 symbols: 2 frames of 4 x 16
        "methods": [{"name": "probe", "kind": "channel_probe"}],
        "metrics": ["psnr"],
        "traffic": {"kind": "periodic", "interval_s": 0.1},
        "output": str(tmp_path),
    }
    raw.update(extra)
    return raw


def test_each_message_samples_its_draws_process_at_its_transmission_time(probe, tmp_path):
    run_scenario(scenario_from_dict(_raw(tmp_path / "a")))
    rows = pd.read_csv(tmp_path / "a" / "results.csv")
    assert len(probe) == 4 and len(rows) == 4  # 2 images x 2 draws, one message per batch (max_batch 1)
    starts = [t.start_s[0] for t, _, _ in probe]
    # periodic 10 fps, airtime of one slot << 100 ms: no queueing, t_tx_start = t_arrival
    assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3]) and rows.t_arrival.tolist() == pytest.approx(starts)
    seeds = [t.process_seeds[0] for t, _, _ in probe]
    assert seeds[0] == seeds[1] != seeds[2] == seeds[3]  # messages k·B + i: one process per draw k
    ts = (16 + 4) / (16 * 15e3)
    for (t, h, times) in probe:
        assert times[0].tolist() == pytest.approx([t.start_s[0] + k * ts for k in range(10)])  # 2 frames x 5
        assert float((h[0, 0, 0] - h[0, 1, 4]).abs().max()) > 0  # the channel moves within the message

    # the same scenario and seed: the same channels; another seed: other ones
    first = [h for _, h, _ in probe]
    probe.clear()
    run_scenario(scenario_from_dict(_raw(tmp_path / "b")))
    for h0, (_, h1, _) in zip(first, probe, strict=True):
        torch.testing.assert_close(h1, h0, rtol=0, atol=0)
    probe.clear()
    run_scenario(scenario_from_dict(_raw(tmp_path / "c", seed=4)))
    assert float((probe[0][1] - first[0]).abs().mean()) > 0.1


def test_a_static_tdl_ignores_the_transmission_time(probe, tmp_path):
    run_scenario(scenario_from_dict(_raw(tmp_path, speed=0.0)))
    assert len(probe) == 4
    for _, h, times in probe:
        assert times is None and bool((h == h[:, :1, :1]).all())  # block fading per message


def test_speed_with_a_coherence_time_is_one_line_error(tmp_path):
    raw = _raw(tmp_path, numerology={"coherence_time_s": 0.01}, methods=[{"kind": "jscc"}])
    with pytest.raises(ScenarioError, match=r"numerology\.coherence_time_s: channel\.speed > 0 makes"):
        scenario_from_dict(raw, check_points=False)
    raw["channel"]["speed"] = -1.0
    raw.pop("numerology")
    with pytest.raises(ScenarioError, match=r"channel\.speed: .*greater than or equal to 0"):
        scenario_from_dict(raw, check_points=False)
