"""Outage is visible: summary.csv and the report carry the outage rate, CRC failures and means
with and without the outage images, labelled."""

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
from linksim.reports import make_report
from linksim.scenario import MethodConfig, scenario_from_dict


class HalfOutageConfig(MethodConfig):
    kind: Literal["half_outage"] = "half_outage"


class HalfOutage(ImageMethod):
    """Images with an even index arrive exactly (x 0.9); odd ones fail their CRC -> grey fallback."""

    extra_columns = ("crc_ok",)

    def grid(self):
        return GridInfo(num_data=self.point.num_symbols)

    def encode(self, images, generator):
        return TxSignal(x=images.clone())

    def channel(self, tx, channel_generator, noise_generator):
        return RxSignal(y=tx.x)

    def decode(self, rx, generator):
        b = rx.y.shape[0]
        fail = torch.arange(b) % 2 == 1
        x = torch.where(fail[:, None, None, None], torch.full_like(rx.y, 0.5), rx.y * 0.9)
        return Decoded(images=x, outage=fail, extras={"crc_ok": ~fail})


@pytest.fixture
def half_outage():
    METHODS.add("half_outage", HalfOutage, HalfOutageConfig, "test: every other image in outage")
    yield
    METHODS.remove("half_outage")


def test_outage_rate_crc_failures_and_means_without_outage(tmp_path, half_outage):
    raw = {"name": "outage", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 4},
           "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"]},
           "methods": [{"name": "half", "kind": "half_outage"}], "output": str(tmp_path / "out")}
    out = run_scenario(scenario_from_dict(raw), fresh=True)
    rows = pd.read_csv(out / "results.csv")
    summary = pd.read_csv(out / "summary.csv")
    delivered = rows[rows["outage"] == False]  # noqa: E712 - the CSV column is boolean
    for _, s in summary.iterrows():
        assert s["outage_rate"] == pytest.approx(0.5) and s["crc_failures"] == 2
        assert s["psnr"] == pytest.approx(rows["psnr"].mean())  # all images, fallbacks included
        assert s["psnr_no_outage"] == pytest.approx(delivered["psnr"].mean())
        assert s["psnr_no_outage"] > s["psnr"] + 3
    make_report(out, formats=("png",))
    report = (out / "report.md").read_text()
    assert "| outage | CRC fail | PSNR [dB] excl. outage |" in report
    line = next(ln for ln in report.splitlines() if ln.startswith("| half |"))
    cells = [c.strip() for c in line.split("|")]
    assert "0.50" in cells and "2" in cells
    assert f"{delivered['psnr'].mean():.2f}" in line
    assert "excl. outage' columns average the delivered images only" in report
    assert (out / "figures" / "outage_vs_csnr.png").is_file()
    assert "outage" in (out / "report.tex").read_text()
