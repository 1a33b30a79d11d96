"""GESCO / segmenter trainings: resume is exact, exports load, CLI commands exist (tiny, few steps)."""

from __future__ import annotations

import torch

from linksim.codecs.gesco.method import load_gesco
from linksim.codecs.gesco.segmenter import load_segmenter
from linksim.codecs.gesco.training import train_gesco, train_segmenter

TINY = {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "device": "cpu", "sample_every": None, "sample_steps": 2,
        "data": {"size": [16, 32], "count": 8, "seed": 5},
        "model": {"channels": [8, 16, 16], "groups": 4, "spade_hidden": 8, "time_dim": 16}}


def _state(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_gesco_resume_is_exact(tmp_path):
    a = train_gesco(dict(TINY, export=str(tmp_path / "a.safetensors")), tmp_path / "a", progress=False)
    assert train_gesco(dict(TINY, export=str(tmp_path / "b.safetensors")), tmp_path / "b", progress=False,
                       stop_at=2) is None
    b = train_gesco(dict(TINY, export=str(tmp_path / "b.safetensors")), tmp_path / "b", progress=False)
    sa, sb = _state(a.export), _state(b.export)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.samples_png.is_file() and sa[next(iter(sa))].dtype == torch.float16
    net = load_gesco(str(a.export))
    assert net.config.channels == [8, 16, 16]


def test_segmenter_trains_and_exports(tmp_path):
    cfg = {"steps": 3, "batch_size": 2, "checkpoint_every": 2, "device": "cpu", "heldout": 4,
           "data": {"size": [16, 32], "count": 8}, "model": {"channels": [8, 8, 8]},
           "export": str(tmp_path / "seg.safetensors")}
    r = train_segmenter(cfg, tmp_path / "run", progress=False)
    assert 0 <= r.heldout_miou <= 1
    assert load_segmenter(r.export).predict(torch.zeros(1, 3, 16, 32)).shape == (1, 16, 32)


def test_cli_has_train_commands():
    from typer.testing import CliRunner

    from linksim.cli import app

    out = CliRunner().invoke(app, ["train", "--help"]).output
    assert "gesco" in out and "segmenter" in out


def test_fds_training_shows_the_network_the_receivers_maps(tmp_path, monkeypatch):
    """``fds_training``: every map the UNet is trained on is what the receiver makes of it
    (:func:`clean_up` with FDS) — FDS output written out here by hand (3x3 box mean, then 3x3 max,
    replicate padding) on the noisy map the training drew; without the option, the raw map."""
    import torch.nn.functional as F

    from linksim.codecs.gesco import training
    from linksim.codecs.gesco.model import SemanticUNet

    seen, noisy = [], []
    real_forward, real_channel = SemanticUNet.forward, training.paper_channel

    def forward(self, x, t, cond):
        if self.training:  # the trained net (the sample grids run the EMA copy, in eval mode)
            seen.append(cond.detach().clone())
        return real_forward(self, x, t, cond)

    def channel(cond, present, sigma, gen):
        out = real_channel(cond, present, sigma, gen)
        noisy.append((out.detach().clone(), present.clone()))
        return out

    monkeypatch.setattr(SemanticUNet, "forward", forward)
    monkeypatch.setattr(training, "paper_channel", channel)
    cfg = dict(TINY, steps=2, checkpoint_every=2, label_dropout=0.0, export=str(tmp_path / "f.safetensors"))
    train_gesco(dict(cfg, fds_training=True), tmp_path / "fds", progress=False)
    assert len(seen) == len(noisy) == 2
    for cond, (raw, present) in zip(seen, noisy):
        box = F.avg_pool2d(F.pad(raw, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        want = F.max_pool2d(F.pad(box, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        keep = torch.cat([present, torch.ones_like(present[:, :1])], 1).float()[:, :, None, None]
        torch.testing.assert_close(cond, want * keep)
    seen.clear(), noisy.clear()
    train_gesco(dict(cfg, fds_training=False), tmp_path / "raw", progress=False)
    for cond, (raw, _) in zip(seen, noisy):
        torch.testing.assert_close(cond, raw)
