"""GESCO through the engine: labels reach the method and the miou metric (tiny random nets)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from linksim.codecs.gesco.model import SemanticUNet, SemanticUNetConfig
from linksim.codecs.gesco.segmenter import Segmenter, SegmenterConfig, save_segmenter
from linksim.codecs.gesco.training import export_gesco
from linksim.runner import run_scenario
from linksim.errors import LinksimError
from linksim.scenario import load_scenario


def _scenario(tmp_path, data, methods, channel=None):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "g", "seed": 0, "device": "cpu", "data": data, "channel": channel or {"kind": "awgn"},
        "sweep": {"csnr_db": [10], "cbr": ["1/24"]}, "methods": methods, "metrics": ["psnr", "miou"],
        "output": str(tmp_path / "out")}))
    return load_scenario(path)


@pytest.fixture
def nets(tmp_path, monkeypatch):
    model = export_gesco(SemanticUNet(SemanticUNetConfig(channels=[8, 16, 16], groups=4, spade_hidden=8, time_dim=16)),
                         tmp_path / "g.safetensors", {})
    seg = save_segmenter(Segmenter(SegmenterConfig(channels=[8, 8, 8])), tmp_path / "seg.safetensors")
    monkeypatch.setenv("LINKSIM_SEGMENTER", str(seg))
    return str(model)


def test_labels_reach_method_and_metric(tmp_path, nets):
    sc = _scenario(tmp_path, {"source": "scenes", "size": [32, 64], "limit": 2, "seed": 0}, [
        {"name": "ga", "kind": "gesco", "transmit": "analog", "model": nets, "num_steps": 2},
        {"name": "gd", "kind": "gesco", "transmit": "digital", "model": nets, "num_steps": 2, "mcs": "adaptive"},
        {"name": "jscc", "kind": "jscc"},
    ])
    out = run_scenario(sc, fresh=True)
    df = pd.read_csv(out / "results.csv")
    assert set(df["method"]) == {"ga", "gd", "jscc"}
    assert df["miou"].between(0, 1).all()  # every method is scored against the sent labels
    assert {"iou_sky", "iou_car", "map_symbols", "pool", "downsample"} <= set(df.columns)
    ga = df[df.method == "ga"]
    assert (ga["map_symbols"] <= ga["channel_uses"]).all() and (ga["nfe"] == 4).all()
    assert (df[df.method == "gd"]["payload_bits"] > 0).all()


def test_gesco_needs_labelled_data(tmp_path, nets):
    sc = _scenario(tmp_path, {"source": "embedded", "size": [32, 64], "limit": 1},
                   [{"name": "ga", "kind": "gesco", "model": nets, "num_steps": 2}])
    with pytest.raises(LinksimError, match="labelled data"):
        run_scenario(sc, fresh=True)


def test_semantic_scenario_validates():
    sc = load_scenario("scenarios/semantic_awgn.yaml")
    assert {m.kind for m in sc.methods} == {"gesco", "separation", "jscc"}
    assert sc.data.source == "scenes"


def test_gesco_runs_over_multipath_ofdm(tmp_path, nets):
    """``channel.kind: ofdm`` (the scenario's comment): 256 data symbols = 16 subcarriers x 16 OFDM
    symbols, plus one pilot symbol and the CP (8 samples, 8 taps) as overhead; both modes fit the budget."""
    sc = _scenario(tmp_path, {"source": "scenes", "size": [32, 64], "limit": 1, "seed": 0}, [
        {"name": "ga", "kind": "gesco", "transmit": "analog", "model": nets, "num_steps": 2},
        {"name": "gd", "kind": "gesco", "transmit": "digital", "model": nets, "num_steps": 2, "mcs": "adaptive"},
    ], channel={"kind": "ofdm", "subcarriers": 16, "data_symbols": 16, "pilot_symbols": 1, "cp": 8,
                "estimator": "lmmse"})
    df = pd.read_csv(run_scenario(sc, fresh=True) / "results.csv")
    assert set(df["method"]) == {"ga", "gd"} and df["miou"].between(0, 1).all()
    assert (df["channel_uses"] == 256).all()
    # overhead = (pilot REs + CP samples) per data symbol: 16 pilot REs + 17 OFDM symbols x 8 CP
    assert (df["overhead"].astype(float) - (16 + 17 * 8) / 256).abs().max() < 1e-6
