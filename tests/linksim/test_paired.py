"""Common random numbers: the same image sees the same channel and unit noise for every method and
every estimator/equaliser at a point; ``channel.draws``; paired differences."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch

from linksim.codecs.base import Decoded, ImageMethod, RxSignal, TxSignal
from linksim.runner import run_scenario
from linksim.phy.links import GridInfo
from linksim.registry import METHODS
from linksim.scenario import MethodConfig, scenario_from_dict
from linksim.summary import paired_differences, t_interval
from linksim.sweep import expand

DRAWS: list[dict] = []  # what each (method, point) drew: its channel and noise generators' first values


class RecordConfig(MethodConfig):
    kind: Literal["record_draws"] = "record_draws"
    gain: float = 1.0  # a method key: changes the processing, not the draws


class RecordDraws(ImageMethod):
    """Draws one value per image from each generator and keeps them (and sends images unchanged)."""

    def grid(self):
        return GridInfo(num_data=self.point.num_symbols)

    def encode(self, images, generator):
        return TxSignal(x=images.clone())

    def channel(self, tx, channel_generator, noise_generator):
        b = tx.x.shape[0]
        DRAWS.append({"method": self.config.name, "estimator": self.point.link.estimator,
                      "csnr_db": self.point.csnr_db, "channel": torch.randn(b, generator=channel_generator),
                      "noise": torch.randn(b, generator=noise_generator)})
        return RxSignal(y=tx.x)

    def decode(self, rx, generator):
        return Decoded(images=rx.y * 0.9)  # finite PSNR


@pytest.fixture
def record_method():
    METHODS.add("record_draws", RecordDraws, RecordConfig, "test: records its random draws")
    DRAWS.clear()
    yield
    METHODS.remove("record_draws")


def _scenario(tmp_path, **over):
    raw = {"name": "crn", "seed": 3, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 3},
           "channel": {"kind": "ofdm", "cp": 4, "data_symbols": 4, "paths": 4},
           "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"], "channel.estimator": ["perfect", "ls", "lmmse"],
                     "channel.equalizer": ["zf", "mmse"]},
           "methods": [{"name": "a", "kind": "record_draws"}, {"name": "b", "kind": "record_draws", "gain": 2.0}],
           "output": str(tmp_path / "out")}
    raw.update(over)
    return scenario_from_dict(raw)


def test_same_draws_for_every_method_estimator_and_equaliser(tmp_path, record_method):
    scn = _scenario(tmp_path)
    seeds = {}
    for p in expand(scn):
        seeds.setdefault(p.csnr_db, set()).add(p.seed)
    assert all(len(s) == 1 for s in seeds.values()) and seeds[0.0] != seeds[10.0]
    run_scenario(scn, fresh=True)
    assert len(DRAWS) == 2 * 2 * 3 * 2  # methods x csnr x estimators x equalisers
    for csnr in (0.0, 10.0):
        at = [d for d in DRAWS if d["csnr_db"] == csnr]
        for d in at[1:]:
            assert torch.equal(d["channel"], at[0]["channel"]) and torch.equal(d["noise"], at[0]["noise"])
    # the images of one point are different draws, and the two CSNR points are independent draws
    first = [d for d in DRAWS if d["csnr_db"] == 0.0][0]
    other = [d for d in DRAWS if d["csnr_db"] == 10.0][0]
    assert len(set(first["channel"].tolist())) == 3 and not torch.equal(first["channel"], other["channel"])
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert df.groupby("csnr_db")["seed"].nunique().eq(1).all()


def test_channel_draws_rows_and_summary(tmp_path, record_method):
    scn = _scenario(tmp_path, sweep={"csnr_db": [5], "cbr": ["1/24"]},
                    channel={"kind": "awgn", "draws": 4}, methods=[{"name": "a", "kind": "record_draws"}])
    run_scenario(scn, fresh=True)
    (d,) = DRAWS
    assert d["channel"].shape == (12,) and len(set(d["noise"].tolist())) == 12  # 3 images x 4 draws
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(df) == 12 and sorted(df["draw"].unique()) == [0, 1, 2, 3]
    assert (df.groupby("image")["draw"].nunique() == 4).all()
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    row = summary.iloc[0]
    assert (row["n"], row["images"], row["draws"]) == (12, 3, 4)
    assert row["psnr"] == pytest.approx(df["psnr"].mean())


def test_paired_difference_against_an_independent_computation():
    rng = np.random.default_rng(0)
    rows = []
    for img in range(4):
        for draw in range(3):
            base = rng.normal(20, 3)  # the shared (image, draw) luck, cancels in the difference
            rows += [dict(method="ref", image=f"i{img}", draw=draw, csnr_db=0.0, psnr=base),
                     dict(method="m", image=f"i{img}", draw=draw, csnr_db=0.0, psnr=base + 1 + 0.1 * draw)]
    df = pd.DataFrame(rows)
    d = paired_differences(df, "psnr", "ref", ["csnr_db"])
    diffs = np.array([1.0, 1.1, 1.2] * 4)
    # t_{0.975, 11} = 2.200985 (tables)
    assert d["mean"].iloc[0] == pytest.approx(1.1)
    assert d["half"].iloc[0] == pytest.approx(2.200985 * diffs.std(ddof=1) / np.sqrt(12), rel=1e-5)
    assert d["n"].iloc[0] == 12
    # unpaired, the same data give a far wider interval (the shared luck does not cancel)
    _, half_unpaired, _ = t_interval(df[df.method == "m"]["psnr"].to_numpy())
    assert half_unpaired > 10 * d["half"].iloc[0]


def test_perfect_csi_beats_ls_at_the_same_draws(tmp_path):
    """DeepJSCC over OFDM multipath: with the same channel and noise per (image, draw), the true
    channel never does worse on average than its LS estimate from one pilot symbol."""
    raw = {"name": "csi", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 4},
           "channel": {"kind": "ofdm", "cp": 4, "data_symbols": 4, "paths": 4, "draws": 3},
           "sweep": {"csnr_db": [5, 15], "cbr": ["1/24"], "channel.estimator": ["perfect", "ls"]},
           "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}],
           "output": str(tmp_path / "out")}
    run_scenario(scenario_from_dict(raw), fresh=True)
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    piv = df.pivot_table(index=["csnr_db", "image", "draw"], columns="channel.estimator", values="psnr")
    assert len(piv) == 2 * 4 * 3 and piv.notna().all().all()
    gain = (piv["perfect"] - piv["ls"]).groupby("csnr_db").mean()
    assert (gain >= 0).all(), gain
