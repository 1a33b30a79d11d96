"""``kind: jscc``: DeepJSCC through the engine and the analog chain; graceful degradation vs separation."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest
import torch

from linksim.cli import main
from linksim.codecs.base import OperatingPoint
from linksim.codecs.jscc.method import JSCCMethod, JSCCSettings, load_jscc
from linksim.runner import run_scenario
from linksim.phy.links import LinkConfig
from linksim.scenario import scenario_from_dict


def _point(csnr_db=10.0, cbr="1/24", kind="awgn", size=(32, 32), **link):
    return OperatingPoint(csnr_db=csnr_db, cbr=Fraction(cbr), link=LinkConfig(kind=kind, **link), image_shape=size)


class TestJSCCMethod:
    def test_symbols_and_cbr_follow_the_model(self):
        for cbr, c in (("1/48", 2), ("1/24", 4)):
            m = JSCCMethod(JSCCSettings(), _point(cbr=cbr, size=(32, 64)))
            assert m.model.channels == c
            assert m.num_symbols == int(Fraction(cbr) * 3 * 32 * 64) == c * 32 * 64 // 32
            assert m.grid().num_data == m.num_symbols

    def test_unit_power_per_image_on_the_air(self):
        m = JSCCMethod(JSCCSettings(), _point())
        images = torch.rand(3, 3, 32, 32) * torch.tensor([1.0, 0.1, 0.01]).view(3, 1, 1, 1)
        tx = m.encode(images)
        power = tx.x.abs().square().mean(dim=1)
        torch.testing.assert_close(power, torch.ones(3), atol=1e-5, rtol=0)

    def test_cbr_without_a_model_is_rejected(self):
        with pytest.raises(ValueError, match="no embedded ADJSCC for CBR 1/12"):
            JSCCSettings().check_point(_point(cbr="1/12"))
        from linksim.codecs.jscc.adjscc import embedded_path

        assert load_jscc("embedded", Fraction(1, 24)).channels == 4  # the right CBR loads
        with pytest.raises(ValueError, match="has C=4"):
            load_jscc(str(embedded_path("1/24")), "1/48")

    def test_missing_weights_file_is_named(self, tmp_path):
        with pytest.raises(ValueError, match="nope.safetensors do not exist"):
            JSCCSettings(model=str(tmp_path / "nope.safetensors")).check_point(_point())

    @pytest.mark.parametrize("kind,extra", [("rayleigh", {}), ("ofdm", {"estimator": "ls", "data_symbols": 16})])
    def test_runs_over_fading_channels(self, kind, extra):
        m = JSCCMethod(JSCCSettings(), _point(csnr_db=20.0, kind=kind, size=(64, 64), **extra))
        images = torch.rand(2, 3, 64, 64)
        g = torch.Generator().manual_seed(0)
        rx = m.channel(m.encode(images), g, torch.Generator().manual_seed(1))
        assert rx.state.no_eff.shape == rx.y.shape
        out = m.decode(rx).images
        assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1

    def test_scenario_error_names_the_method(self, tmp_path, capsys):
        f = tmp_path / "s.yaml"
        f.write_text(
            "name: s\ndata: {source: embedded, size: 32, limit: 1}\nchannel: {kind: awgn}\n"
            "sweep: {csnr_db: [0], cbr: ['1/12']}\nmethods:\n  - {name: dj, kind: jscc}\n"
        )
        assert main(["validate", str(f)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "methods[0]" in err[0] and "1/12" in err[0]


def test_graceful_degradation_beats_the_cliff(tmp_path):
    """At CBR 1/24 and 0 dB, fixed-MCS HEVC + LDPC (16-QAM, r = 1/2) is below its cliff (every image in
    outage, mid-grey fallback) while DeepJSCC still delivers an image: its PSNR is higher, on every image."""
    scn = scenario_from_dict({
        "name": "degradation", "seed": 0, "device": "cpu",
        "data": {"source": "embedded", "size": 128, "limit": 2},
        "channel": {"kind": "awgn"},
        "sweep": {"csnr_db": [0], "cbr": ["1/24"]},
        "methods": [
            {"name": "hevc_ldpc", "kind": "separation", "codec": "hevc", "modulation": "16qam", "code_rate": 0.5},
            {"name": "deepjscc", "kind": "jscc"},
        ],
        "metrics": ["psnr"],
    })
    run_scenario(scn, output=tmp_path / "out", progress=None)
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    sep = df[df.method == "hevc_ldpc"].set_index("image")
    jscc = df[df.method == "deepjscc"].set_index("image")
    assert sep.outage.astype(bool).all()
    # the separation method's own columns reach results.csv (declared in extra_columns)
    assert (sep.mcs == "16qam-512").all() and not sep.crc_ok.astype(bool).any()
    assert (sep.codeword_errors > 0).all() and jscc.crc_ok.isna().all()
    assert (jscc.psnr > sep.psnr + 2.0).all(), (jscc.psnr, sep.psnr)
