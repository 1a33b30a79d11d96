"""ADJSCC training: config strictness, loss decrease, checkpoint/resume equals an uninterrupted run."""

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from linksim.codecs.jscc.adjscc import ADJSCC
from linksim.codecs.jscc.training import init_weights, load_train_config, train_jscc


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(5):  # smooth colour gradients + a little texture: learnable in a few steps
        img = np.stack([(xx * (i + 1) * 8) % 256, (yy * 12 + 40 * i) % 256, ((xx + yy) * 6) % 256], -1)
        img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"img{i}.png")
    return root


def _cfg(folder, steps=20):
    return {
        "name": "tiny", "seed": 0, "steps": steps, "batch_size": 4, "checkpoint_every": 10, "device": "cpu",
        "eval_csnr_db": [0, 10], "eval_repeats": 1,
        "data": {"source": "folder", "folder": str(folder), "crop": 8, "scales": [1.0], "holdout": ["img4"], "eval_size": 8},
        "model": {"channels": 4, "filters": 8},
        "channel": {"kind": "awgn", "csnr_db": [5, 15]},
        "optim": {"lr": 0.01, "schedule": "cosine"},
    }


def test_config_is_strict(tiny_folder):
    bad = _cfg(tiny_folder)
    bad["model"]["filter"] = 8
    with pytest.raises(ValidationError, match="filter"):
        load_train_config(bad)
    with pytest.raises(ValidationError, match="multiples of 4"):
        load_train_config({**_cfg(tiny_folder), "data": {**_cfg(tiny_folder)["data"], "crop": 10}})


def test_loss_decreases_and_outputs_written(tiny_folder, tmp_path):
    res = train_jscc(_cfg(tiny_folder), tmp_path / "run", resume=False, progress=False)
    losses = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["losses"]
    assert len(losses) == 20
    # measured ratio 0.81 with the default He init (0.83 torch defaults, 0.76 data init;
    # deterministic: fixed seeds); an untrained or broken loop stays near 1
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    for p in (res.weights, res.config, res.loss_png, res.eval_csv):
        assert p.is_file()
    assert set(res.psnr) == {0.0, 10.0}


def test_resume_equals_uninterrupted_run(tiny_folder, tmp_path):
    cfg = _cfg(tiny_folder, steps=8)
    full = train_jscc(cfg, tmp_path / "full", resume=False, progress=False)
    assert train_jscc(cfg, tmp_path / "split", resume=False, progress=False, stop_at=5) is None
    split = train_jscc(cfg, tmp_path / "split", resume=True, progress=False)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert a["losses"] == b["losses"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert full.psnr == split.psnr


def test_init_weights_unit_rms_blocks():
    # data init: every decoder block and the pre-sigmoid logits start at RMS 1 (10 passes;
    # GDN makes the scale slightly nonlinear, so allow 5 %); torch's defaults start at ~0.01
    torch.manual_seed(0)
    m = ADJSCC(channels=2, filters=8)
    imgs = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    init_weights(m, imgs, csnr_db=7.0)
    d, snr = m.decoder, torch.full((8, 1), 7.0)
    with torch.no_grad():
        z = torch.view_as_real(m.encode(imgs, 7.0)).reshape(8, 2, 4, 4)
        for i in range(5):
            z = d.af[i](d.acts[i](d.norms[i](d.convs[i](z))), snr)
            assert abs(z.square().mean().sqrt().item() - 1.0) < 0.05, i
        logits = d.out_conv(torch.nn.functional.pad(z, (3, 3, 3, 3), mode="reflect"))
    assert abs(logits.square().mean().sqrt().item() - 1.0) < 0.05
    assert all(float(c.bias.abs().max()) == 0.0 for c in d.convs)
