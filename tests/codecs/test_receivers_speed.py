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
                       str(steps), "--images", str(images), "--adm-steps", "0", "--output", str(out),
                       "--decoders", "none"])
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


def test_profile_from_the_rows(bench, tiny_prior, tmp_path):
    """``--profile``: the receiver rows of a CSV written earlier plus a decoder timed now become a device
    profile linksim reads (``device_profile: FILE``); per-image costs are the rows' batch costs / images."""
    from linksim.scenario import scenario_from_dict
    from linksim.timing import load_profile

    out = tmp_path / "speed.csv"
    bench.main(["--quick", "--device", "cpu", "--prior", str(tiny_prior), "--size", "64", "--steps", "2",
                "--images", "2", "--adm-steps", "0", "--output", str(out), "--decoders", "none"])
    prof = tmp_path / "mine.yaml"
    rows = bench.main(["--from-csv", str(out), "--device", "cpu", "--size", "32", "--repeats", "1",
                       "--decoders", "jscc", "--output", str(tmp_path / "again.csv"), "--profile", str(prof),
                       "--profile-name", "mine"])
    p = load_profile(prof)
    assert p.name == "mine" and p.status == "measured"
    (dec,) = [r for r in rows if r["model_set"] == "decode"]
    jscc = p.entry_for("jscc", None, "tdl")
    assert jscc.size == 32 and jscc.s_per_image == pytest.approx(dec["prep_s"], rel=1e-3) and jscc.s_per_nfe == 0
    with out.open() as f:
        hifi = [r for r in csv.DictReader(f) if r["receiver"] == "hifi_diffcom" and r["channel"] == "ofdm"][0]
    from linksim.method_configs import HiFiDiffComConfig

    e = p.entry_for("hifi_diffcom", HiFiDiffComConfig(name="h", kind="hifi_diffcom"), "tdl")
    assert e.s_per_nfe == pytest.approx(float(hifi["s_per_step"]) / 2, rel=1e-3)
    assert e.s_per_image == pytest.approx(float(hifi["prep_s"]) / 2, rel=1e-3)
    assert p.entry_for("softcast", None, "awgn").kind == "default"
    scn = scenario_from_dict({"name": "u", "channel": {"kind": "awgn"}, "data": {"size": 32},
                              "sweep": {"csnr_db": [0], "cbr": ["1/24"]}, "device_profile": str(prof),
                              "methods": [{"name": "j", "kind": "jscc"}]})
    assert scn.cost_model(scn.methods[0], "awgn")[0].kind == "jscc"
