"""A channel kind from a third-party package (issue 13): registered through the real entry-point
mechanism (a throwaway ``*.dist-info`` with ``entry_points.txt`` on ``sys.path``), then run end to end
with ``channel.kind: gain_awgn`` through an image method (``jscc``) and through ``phy_ber``.

The plug-in's link is a flat channel with a known constant gain ``g = 10^(gain_db/20)`` and perfect
CSI: after the equaliser the effective SNR is ``g²·Es/N0``, so its BER is the closed-form AWGN BER
at ``Eb/N0 + gain_db``, and at ``gain_db: 0`` it is the AWGN link itself, bit for bit.
"""

from __future__ import annotations

import math
import sys
import textwrap

import pytest

import linksim
from linksim.registry import CHANNELS, load_entry_points

PLUGIN = '''
from typing import Literal

import torch

from linksim.channels import ChannelConfig
from linksim.phy.channels import FlatLink
from linksim.phy.links import ChannelRealization


class GainConfig(ChannelConfig):
    kind: Literal["gain_awgn"] = "gain_awgn"
    gain_db: float = 0.0


class GainLink(FlatLink):
    """AWGN after a known constant gain g = 10^(gain_db/20) (perfect CSI)."""

    kinds = ("gain_awgn",)

    def generate(self, batch_size, generator):
        g = 10.0 ** (self.cfg.option("gain_db", 0.0) / 20.0)
        return ChannelRealization(h=torch.full((batch_size, self.num_symbols), g, dtype=self.cdtype,
                                               device=self.device))


def register(registry):
    registry.add("gain_awgn", GainLink, GainConfig, "test plug-in: AWGN after a known gain")
'''


@pytest.fixture
def gain_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "linksim_gainplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: linksim-gainplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[linksim.channels]\ngain = linksim_gainplug:register\n")
    (site / "linksim_gainplug.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    load_entry_points()
    assert "gain_awgn" in CHANNELS
    yield
    CHANNELS.remove("gain_awgn")
    sys.modules.pop("linksim_gainplug", None)


def _qfunc(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def test_plugin_channel_through_phy_ber(tmp_path, gain_plugin):
    """Uncoded QPSK over the plug-in link at Eb/N0 6 dB, gain -3 dB: BER = Q(sqrt(2·10^(0.3)))."""
    raw = {"name": "plug_ber", "seed": 0, "device": "cpu", "channel": {"kind": "gain_awgn", "gain_db": -3.0},
           "sweep": {"ebno_db": [6]},
           "methods": [{"name": "qpsk", "kind": "phy_ber", "modulation": "qpsk", "batch_size": 64,
                        "max_bit_errors": None, "max_blocks": 128}]}
    res = linksim.run(raw, output=tmp_path / "ber", figures=False)
    row = res.rows.iloc[0]
    assert row["channel"] == "gain_awgn"
    expected = _qfunc(math.sqrt(2 * 10 ** ((6 - 3) / 10)))  # 0.0229
    n = int(row["bits"])
    sigma = math.sqrt(expected * (1 - expected) / n)
    assert n == 128 * 1024
    assert abs(row["ber"] - expected) < 4 * sigma, (row["ber"], expected, sigma)
    # the gain matters: at 0 dB effective SNR 6 dB gives a 7x lower BER
    assert row["ber"] > 3 * _qfunc(math.sqrt(2 * 10 ** 0.6))


def test_plugin_channel_through_an_image_method(tmp_path, gain_plugin):
    """jscc over gain_awgn at gain 0 dB = jscc over awgn, image for image; at -20 dB (effective CSNR -10 dB) it loses PSNR."""
    base = {"name": "plug_img", "seed": 0, "device": "cpu", "data": {"size": 32, "limit": 2},
            "sweep": {"csnr_db": [10], "cbr": ["1/24"]}, "methods": [{"kind": "jscc"}], "metrics": ["psnr"]}
    awgn = linksim.run(dict(base, channel={"kind": "awgn"}), output=tmp_path / "awgn", figures=False).rows
    same = linksim.run(dict(base, channel={"kind": "gain_awgn"}), output=tmp_path / "g0", figures=False).rows
    weak = linksim.run(dict(base, channel={"kind": "gain_awgn", "gain_db": -20.0}), output=tmp_path / "g20",
                       figures=False).rows
    assert list(same["channel"]) == ["gain_awgn"] * 2
    assert list(same["psnr"]) == pytest.approx(list(awgn["psnr"]), abs=1e-9)
    assert weak["psnr"].mean() < awgn["psnr"].mean() - 1.0


def test_plugin_channel_is_swept_and_validated(tmp_path, gain_plugin):
    """channel.gain_db is a sweep axis of the plug-in kind; a wrong value is a one-line scenario error."""
    from linksim.errors import ScenarioError
    from linksim.scenario import scenario_from_dict

    raw = {"name": "s", "channel": {"kind": "gain_awgn"}, "sweep": {"ebno_db": [0], "channel.gain_db": [0, -3]},
           "methods": [{"kind": "phy_ber"}]}
    assert len(scenario_from_dict(raw).sweep["channel.gain_db"]) == 2
    with pytest.raises(ScenarioError, match=r"channel\.gain_db"):
        scenario_from_dict(dict(raw, channel={"kind": "gain_awgn", "gain_db": "loud"}))
