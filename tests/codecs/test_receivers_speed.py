"""benchmarks/receivers_speed.py in quick mode with a tiny random diffusers prior (< 20 s on one core)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from linksim.codecs.diffusion.hifi import HiFiDiffCom, t_start
from linksim.codecs.diffusion.loaders import load_prior
from linksim.codecs.diffusion.schedules import Schedule, linear_betas
from linksim.codecs.diffusion.training import ScheduleConfig, UNetConfig, build_unet, export_prior, scheduler_config
from linksim.codecs.jscc.method import load_jscc

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "receivers_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("receivers_speed", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    """A 2-level, 8-channel UNet2DModel with random (seeded) weights, exported like the real prior."""
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(block_out_channels=[8, 8], attention_levels=[], norm_num_groups=4,
                                 attention_head_dim=4), sample_size=64)
    return export_prior(unet.eval(), scheduler_config(ScheduleConfig()), tmp_path_factory.mktemp("prior") / "ddpm")


def test_quick_run_table(bench, tiny_prior, tmp_path):
    out = tmp_path / "speed.csv"
    steps, images = 2, 2
    rows = bench.main(["--quick", "--device", "cpu", "--prior", str(tiny_prior), "--size", "64", "--steps",
                       str(steps), "--images", str(images), "--adm-steps", "0", "--output", str(out)])
    # the files: CSV with exactly the documented columns, the same rows, and the markdown table beside it
    with out.open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == bench.COLUMNS
        assert len(list(reader)) == len(rows)
    md = out.with_suffix(".md").read_text().splitlines()
    assert md[0] == "| " + " | ".join(bench.TABLE) + " |" and len(md) == 2 + len(rows)

    # one reference row per channel; Blind-DiffCom only over OFDM (it needs the raw grid)
    got = {(r["channel"], r["receiver"]) for r in rows}
    assert got == {("awgn", "deepjscc"), ("awgn", "diffcom"), ("awgn", "hifi_diffcom"), ("ofdm", "deepjscc"),
                   ("ofdm", "diffcom"), ("ofdm", "hifi_diffcom"), ("ofdm", "blind_diffcom")}
    assert all(r["model_set"] == "embedded" and r["size"] == 64 and r["images"] == images for r in rows)

    # full-run NFE: T for DiffCom/Blind; t_start + 1 for HiFi = 236 at 10 dB, CBR 1/48 (reference
    # test vector t_start = 235 of shared/reference/receivers.md)
    hifi_nfe = t_start(10.0, "1/48", Schedule(linear_betas(1000)).alphas_cumprod) + 1
    assert hifi_nfe == 236
    want_nfe = {"deepjscc": 0, "diffcom": 1000, "hifi_diffcom": hifi_nfe, "blind_diffcom": 1000}
    for r in rows:
        assert r["nfe"] == want_nfe[r["receiver"]], r
        assert r["s_per_image"] > 0 and math.isfinite(r["s_per_image"]), r
        assert r["images_per_s"] == pytest.approx(1 / r["s_per_image"], rel=1e-3)
        if r["receiver"] == "deepjscc":
            assert r["x_jscc"] == 1.0 and r["prep_s"] > 0
            continue
        # the sampler's NFE equals the steps it was given and the prior network calls actually made
        assert r["steps_timed"] == steps and r["nfe_timed"] == steps and r["net_calls"] == steps, r
        assert r["prep_s"] > 0 and r["s_per_step"] > 0
        # the projection is the stated formula (values rounded to 4 significant digits)
        proj = (r["prep_s"] + r["nfe"] * r["s_per_step"]) / images
        assert r["s_per_image"] == pytest.approx(proj, rel=2e-3)
        assert r["proj_171_s"] == pytest.approx((r["prep_s"] + 171 * r["s_per_step"]) / images, rel=2e-3)
        # a full guided run (>= 236 prior forward + backward passes) cannot beat one JSCC decode
        assert r["x_jscc"] > 1, r


def test_step_cap_keeps_the_receivers_schedule(bench, tiny_prior):
    """The cap truncates HiFi-DiffCom's own schedule (starting at t_start), it does not respace it."""
    prior = load_prior(str(tiny_prior), "cpu")
    rx = HiFiDiffCom(prior, load_jscc("embedded", "1/48", "cpu"), 10.0, "1/48", (64, 64))
    full = bench._capped(rx, 3)
    assert full == list(range(235, -1, -1))
    assert rx.timesteps() == [235, 234, 233]
    rx2 = HiFiDiffCom(prior, load_jscc("embedded", "1/48", "cpu"), 10.0, "1/48", (64, 64))
    assert bench._capped(rx2, None) == full and rx2.timesteps() == full
