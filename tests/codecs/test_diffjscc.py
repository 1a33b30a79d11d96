"""DiffJSCC: stage-1 ResNet JSCC arithmetic, the wavelet colour fix (known answer), the embedded
refiner (uses its condition, deterministic with the seed) and the method's bad-input errors."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from linksim.codecs.diffjscc.colorfix import wavelet_color_fix, wavelet_decompose
from linksim.codecs.jscc.adjscc import awgn_channel
from linksim.codecs.jscc.resnet import ResNetJSCC, embedded_resnet_path
from linksim.codecs.diffjscc.pixel import EMBEDDED_DDPM_DIR

SHIPPED = EMBEDDED_DDPM_DIR.is_dir() and embedded_resnet_path("1/384").is_file() and embedded_resnet_path("1/96").is_file()
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="embedded DiffJSCC weights not shipped")


@pytest.mark.parametrize("c, cbr", [(2, "1/768"), (4, "1/384"), (8, "1/192"), (16, "1/96")])
def test_resnet_jscc_cbr_is_c_over_1536(c, cbr):
    """The paper's table: CBR = C/1536 at x16 (C = 4 -> 1/384, 16 -> 1/96, 2 -> 1/768, 8 -> 1/192)."""
    assert ResNetJSCC.channels_for_cbr(cbr) == c
    m = ResNetJSCC(channels=c, filters=8)
    # N complex symbols per 3·H·W reals, counted here from the latent shape [C, H/16, W/16]
    assert Fraction(m.num_symbols(64, 128), 3 * 64 * 128) == Fraction(cbr)
    with pytest.raises(ValueError, match="multiples of 16"):
        m.num_symbols(40, 64)


def test_resnet_jscc_shapes_and_per_image_power():
    m = ResNetJSCC(channels=4, filters=8).eval()
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    x[0] *= 0.01  # a dark image gets the same unit power (per image, not per batch)
    with torch.no_grad():
        z = m.latent(x, 5.0)
        s = m.encode(x, 5.0)
        y = m(x, awgn_channel(torch.Generator().manual_seed(1)), 5.0)
    assert z.shape == (3, 4, 4, 4) and s.shape == (3, 32) and y.shape == x.shape
    torch.testing.assert_close(s.abs().square().mean(dim=1), torch.ones(3), rtol=1e-5, atol=1e-5)


def test_resnet_snr_modulation_changes_the_code():
    """The SNR modulation layers make the encoding depend on the SNR (non-trivial gates)."""
    m = ResNetJSCC(channels=4, filters=16).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.allclose(m.encode(x, 0.0), m.encode(x, 14.0))


def test_wavelet_color_fix_known_answer():
    """content = reference + colour cast (per-channel constant) + Nyquist checkerboard detail.
    The cast lies in the low band, the checkerboard in the high band (the first binomial blur maps it
    to 0 exactly, reflection padding keeps that true at the border): the fix must return
    reference + checkerboard exactly."""
    h = w = 32
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    reference = torch.stack([0.3 + 0.2 * torch.sin(xx / 9.0), 0.5 + 0.1 * torch.cos(yy / 7.0),
                             0.4 + 0.001 * xx * yy / 10]).unsqueeze(0)
    checker = ((-1.0) ** (xx + yy)).expand(1, 3, h, w) * 0.05
    cast = torch.tensor([0.2, -0.1, 0.05]).reshape(1, 3, 1, 1)
    out = wavelet_color_fix(reference + cast + checker, reference)
    torch.testing.assert_close(out, reference + checker, rtol=0, atol=1e-5)
    high, low = wavelet_decompose(reference + cast, 4)
    torch.testing.assert_close(high + low, reference + cast, rtol=0, atol=1e-6)


# ---- embedded refiner (shipped weights) ------------------------------------------------------
def _photos(size=64):
    from linksim.codecs.images import embedded_photos, resize_center_crop

    p = embedded_photos(["coffee", "chelsea"])
    return torch.stack([resize_center_crop(p[n], size, size) for n in ("coffee", "chelsea")])


@needs_shipped
def test_refiner_uses_its_condition():
    """Swap the conditions: each refined image is closer (MSE) to its own stage-1 decode than to
    the other image's, with the same noise. A refiner that ignored its condition would fail."""
    from linksim.codecs.diffjscc.pixel import load_pixel_refiner
    from linksim.codecs.jscc.resnet import load_embedded_resnet

    x = _photos()
    jscc = load_embedded_resnet("1/96")
    ref = load_pixel_refiner()
    with torch.no_grad():
        x1 = jscc(x, awgn_channel(torch.Generator().manual_seed(0)), 10.0).clamp(0, 1)
    out = ref.refine(x1, 10.0, num_steps=20, generator=torch.Generator().manual_seed(0))
    d = ((out[:, None] - x1[None]) ** 2).mean(dim=(2, 3, 4))  # d[i, j] = MSE(refined_i, stage1_j)
    assert d[0, 0] < d[0, 1] and d[1, 1] < d[1, 0]
    # the same noise with the conditions swapped: the winner swaps with them
    sw = ref.refine(x1.flip(0), 10.0, num_steps=20, generator=torch.Generator().manual_seed(0))
    d = ((sw[:, None] - x1[None]) ** 2).mean(dim=(2, 3, 4))
    assert d[0, 1] < d[0, 0] and d[1, 0] < d[1, 1]


@needs_shipped
def test_method_output_follows_its_own_stage1_through_the_colour_fix():
    """The method's output (colour fix on, the default) is closer to its own stage-1 decode than to
    the other image's, through the colour fix too (whose low band *is* stage 1's)."""
    from linksim.codecs.diffjscc.pixel import load_pixel_refiner
    from linksim.codecs.jscc.resnet import load_embedded_resnet

    x = _photos()
    with torch.no_grad():
        x1 = load_embedded_resnet("1/96")(x, awgn_channel(torch.Generator().manual_seed(0)), 10.0).clamp(0, 1)
    out = wavelet_color_fix(load_pixel_refiner().refine(x1, 10.0, 20, generator=torch.Generator().manual_seed(0)), x1)
    d = ((out[:, None] - x1[None]) ** 2).mean(dim=(2, 3, 4))
    assert d[0, 0] < d[0, 1] and d[1, 1] < d[1, 0]


def _method(tmp_cfg=None, **over):
    from linksim.codecs.base import OperatingPoint
    from linksim.codecs.diffjscc.method import DiffJSCCMethod, DiffJSCCSettings
    from linksim.phy.links import LinkConfig

    cfg = DiffJSCCSettings(**{"num_steps": 5, **over})
    point = OperatingPoint(csnr_db=5.0, cbr=Fraction(1, 384), link=LinkConfig(kind="awgn"), image_shape=(64, 64))
    return DiffJSCCMethod, cfg, point


@needs_shipped
def test_method_is_deterministic_with_the_seed():
    cls, cfg, point = _method()
    m = cls(cfg, point)
    x = _photos()

    def run(seed):
        gens = [torch.Generator().manual_seed(seed + k) for k in range(3)]
        tx = m.encode(x, gens[0])
        rx = m.channel(tx, gens[1], gens[2])
        return m.decode(rx, torch.Generator().manual_seed(seed + 3))

    a, b, c = run(0), run(0), run(1)
    assert a.nfe == 5 and a.images.shape == x.shape
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_check_cbr_without_stage1_model_is_one_line():
    cls, cfg, point = _method()
    from dataclasses import replace

    with pytest.raises(ValueError) as err:
        cfg.check_point(replace(point, cbr=Fraction(1, 192)))
    assert "no embedded ResNet JSCC for CBR 1/192" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="k/1536"):
        cfg.check_point(replace(point, cbr=Fraction(1, 1024)))


def test_check_sd21_without_weights_names_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
    cls, cfg, point = _method(backbone="sd21")
    if not embedded_resnet_path("1/384").is_file():
        pytest.skip("stage-1 weights not shipped")
    with pytest.raises(ValueError) as err:
        cfg.check_point(point)
    msg = str(err.value)
    assert "backbone sd21 unavailable" in msg and "unet/diffusion_pytorch_model.safetensors" in msg
    assert "diffjscc_control.safetensors" in msg and "\n" not in msg


def _train_config(tmp_path, **over):
    import numpy as np
    import yaml
    from PIL import Image

    root = tmp_path / "imgs"
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    cfg = {"name": "tiny", "seed": 0, "steps": 3, "batch_size": 2, "checkpoint_every": 2, "device": "cpu",
           "num_threads": 1, "data": {"source": "folder", "folder": str(root), "crop": 16, "scales": [1.0],
                                      "holdout": [], "eval_size": 16},
           "refiner_crop": 8, "stage1": {"jscc": "embedded_resnet", "cbrs": ["1/384"]},
           "model": {"block_out_channels": [8, 8], "attention_levels": [], "norm_num_groups": 4, "attention_head_dim": 4},
           "sample": {"every": 2, "count": 2, "steps": 2}, **over}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.skipif(not embedded_resnet_path("1/384").is_file(), reason="stage-1 weights not shipped")
def test_train_diffjscc_cli_resumes_and_exports(tmp_path):
    from linksim.cli import main
    from linksim.codecs.diffjscc.pixel import load_pixel_refiner

    cfg, out = _train_config(tmp_path), tmp_path / "run"
    assert main(["train", "diffjscc", str(cfg), "--output", str(out), "--stop-at", "2"]) == 0
    assert (out / "checkpoint.pt").is_file() and not (out / "ddpm").exists()
    assert (out / "samples_0000002.png").is_file()  # rows: original / stage 1 / refined
    assert main(["train", "diffjscc", str(cfg), "--output", str(out)]) == 0
    ref = load_pixel_refiner(out / "ddpm")
    y = ref.refine(torch.rand(1, 3, 16, 16), 5.0, num_steps=2, generator=torch.Generator().manual_seed(0))
    assert y.shape == (1, 3, 16, 16)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_training_target_is_what_diffusers_reads(prediction_type):
    """Independent of our formula: the target fed to diffusers' DDIM ``step`` (eta 0) at the
    last step gives back x0 exactly, whatever the parametrisation; and for v it equals diffusers'
    own ``get_velocity``."""
    from diffusers import DDIMScheduler, DDPMScheduler

    from linksim.codecs.diffusion.training import training_target

    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.randn(2, 3, 8, 8, generator=g)
    kw = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", prediction_type=prediction_type)
    t = torch.tensor([700, 700])
    abar = DDPMScheduler(**kw).alphas_cumprod[t].reshape(2, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    target = training_target(prediction_type, x0, noise, abar)
    if prediction_type == "v_prediction":
        torch.testing.assert_close(target, DDPMScheduler(**kw).get_velocity(x0, noise, t))
    ddim = DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    ddim.set_timesteps(1)  # one step from t = 999 down to x0 (alpha_bar_prev = 1)
    t999 = ddim.timesteps[0]
    abar = ddim.alphas_cumprod[t999]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    out = ddim.step(training_target(prediction_type, x0, noise, abar), t999, x_t, eta=0.0).prev_sample
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)


@pytest.mark.skipif(not embedded_resnet_path("1/384").is_file(), reason="stage-1 weights not shipped")
def test_train_diffjscc_exports_its_prediction_type(tmp_path):
    import json

    from linksim.codecs.diffjscc.training import train_diffjscc

    out = train_diffjscc(_train_config(tmp_path, prediction_type="sample", steps=1, sample={"every": 5, "count": 1, "steps": 1}),
                         tmp_path / "run", progress=False)
    assert json.loads((out / "scheduler_config.json").read_text())["prediction_type"] == "sample"


def test_train_diffjscc_bad_config_is_one_line_exit_2(tmp_path, capsys):
    from linksim.cli import main

    cfg = _train_config(tmp_path, stage1={"cbrs": ["1/384"], "bogus": 1})
    assert main(["train", "diffjscc", str(cfg), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stage1.bogus" in err[0] and str(cfg) in err[0]


@pytest.mark.parametrize("cbr, text", [("1/192", "no embedded ResNet JSCC for CBR 1/192"),
                                       ("1/1024", "k/1536")])
def test_scenario_cbr_without_stage1_model_exits_2_one_line(tmp_path, capsys, cbr, text):
    from linksim.cli import main

    f = tmp_path / "s.yaml"
    f.write_text("name: d\nseed: 0\ndevice: cpu\ndata: {source: embedded, names: [coffee], size: 64}\n"
                 f"channel: {{kind: awgn}}\nsweep: {{csnr_db: [1], cbr: ['{cbr}']}}\n"
                 "methods: [{name: dj, kind: diffjscc}]\nmetrics: [psnr]\n")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0] and "methods[0]" in err[0]


@needs_shipped
def test_run_json_states_the_empty_prompt_and_steps(tmp_path):
    """Without a captioner DiffJSCC conditions on the empty prompt; the issue asks run.json to say
    so (and the step count actually used), read back from a real run."""
    import json

    import linksim

    res = linksim.run({"name": "d", "seed": 0, "device": "cpu",
                       "data": {"source": "embedded", "names": ["coffee"], "size": 64},
                       "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [5], "cbr": ["1/384"]},
                       "methods": [{"name": "dj", "kind": "diffjscc", "num_steps": 2},
                                   {"name": "hevc", "kind": "separation", "codec": "jpeg"}],
                       "metrics": ["psnr"]}, output=tmp_path / "run")
    info = json.loads((res.dir / "run.json").read_text())["methods"]
    assert info == {"dj": {"backbone": "embedded", "num_steps": 2, "prompt": ""}}
