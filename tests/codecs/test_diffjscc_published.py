"""Published DiffJSCC stage-1 checkpoints: key mapping tested on a locally generated file of the
published layout. The reference network below is written in this test from the published
architecture (pix2pix-style sequential containers, their indices are the checkpoint's key names);
it shares no code with :mod:`linksim.codecs.jscc.diffjscc_cnn`. Loading its state dict through
linksim must give the same encoder latent, the same channel symbols and the same decode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linksim.codecs.jscc.method import load_jscc

NGF, TOP, C = 8, 24, 4


class _Mod(nn.Module):  # published "modulation"
    def __init__(self, ch, ext=1):
        super().__init__()
        self.model_multi = nn.Sequential(nn.Linear(ch + ext, ch), nn.ReLU(), nn.Linear(ch, ch), nn.Sigmoid())
        self.model_add = nn.Sequential(nn.Linear(ch + ext, ch), nn.ReLU(), nn.Linear(ch, ch))

    def forward(self, z, csi):
        s = torch.cat([z.mean((-2, -1)), csi], -1)
        return z * self.model_multi(s)[..., None, None] + self.model_add(s)[..., None, None]


class _Res(nn.Module):  # published "ResnetBlock", batch norm, no conv bias
    def __init__(self, ch, reflect):
        super().__init__()
        if reflect:
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
                      nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.BatchNorm2d(ch)]
        else:
            layers = [nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(),
                      nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class _Enc(nn.Module):
    def __init__(self, blocks, ext):
        super().__init__()
        net = [nn.ReflectionPad2d(3), nn.Conv2d(3, NGF, 7, bias=False), nn.BatchNorm2d(NGF), nn.ReLU()]
        for i in range(4):
            a, b = min(NGF * 2**i, TOP), min(NGF * 2 ** (i + 1), TOP)
            net += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        self.net = nn.Sequential(*net)
        self.res_list = nn.ModuleList([m for _ in range(blocks) for m in (_Res(TOP, False), _Mod(TOP, ext))])
        self.projection = nn.Conv2d(TOP, C, 3, padding=1)

    def forward(self, x, csi):
        z = self.net(x)
        for i in range(0, len(self.res_list), 2):
            z = self.res_list[i + 1](self.res_list[i](z), csi)
        return self.projection(z)


class _Dec(nn.Module):
    def __init__(self, blocks, ext):
        super().__init__()
        self.mask_conv = nn.Conv2d(C, TOP, 3, padding=1, bias=False)
        self.res_list = nn.ModuleList([m for _ in range(blocks) for m in (_Res(TOP, True), _Mod(TOP, ext))])
        model = []
        for i in range(4):
            mult = 2 ** (4 - i)
            a, b = min(NGF * mult, TOP), min(NGF * mult // 2, TOP)
            model += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1, bias=False),
                      nn.BatchNorm2d(b), nn.ReLU()]
        model += [nn.ReflectionPad2d(2), nn.Conv2d(NGF, 3, 5), nn.Sigmoid()]
        self.model = nn.Sequential(*model)

    def forward(self, z, csi):
        z = self.mask_conv(z)
        for i in range(0, len(self.res_list), 2):
            z = self.res_list[i + 1](self.res_list[i](z), csi)
        return self.model(z)


class _Stage1(nn.Module):
    def __init__(self, blocks_e=2, blocks_d=3, ext=1):
        super().__init__()
        self.E, self.G = _Enc(blocks_e, ext), _Dec(blocks_d, ext)
        self.lpips_metric = nn.Linear(2, 2)  # the authors keep an LPIPS net inside the module


def _reference(seed=0, **kw) -> _Stage1:
    torch.manual_seed(seed)
    ref = _Stage1(**kw)
    for m in ref.modules():  # non-trivial running statistics, so eval-mode BN is exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return ref.eval()


def _full_checkpoint(ref: _Stage1, path):
    """A full DiffJSCC checkpoint: Lightning ``state_dict``, stage 1 under ``preprocess_model.``,
    other networks beside it."""
    state = {f"preprocess_model.{k}": v for k, v in ref.state_dict().items()}
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2, 2)
    torch.save({"state_dict": state, "global_step": 25000}, path)


def test_published_layout_loads_and_computes_the_same(tmp_path):
    ref = _reference()
    ckpt = tmp_path / "diffjscc_openimage_1_384.ckpt"
    _full_checkpoint(ref, ckpt)
    net = load_jscc(str(ckpt), "1/384")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    snr = torch.tensor([[1.0], [10.0]])
    with torch.no_grad():
        latent = ref.E(x, snr)  # [2, 4, 4, 4]
        # the authors' symbols: first C/2 channels real, last C/2 imaginary, unit power per image
        s = torch.complex(latent[:, :C // 2], latent[:, C // 2:]).reshape(2, -1)
        s = s / s.abs().square().mean(1, keepdim=True).sqrt()
        y = net.encode(x, snr[:, 0])
        assert y.shape == (2, 32) and net.cbr(64, 64) == 1 / 384
        np.testing.assert_allclose(y.numpy(), s.numpy(), atol=1e-5)
        noisy = s + 0.1 * torch.randn(s.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
        want = ref.G(torch.cat([noisy.reshape(2, 2, 4, 4).real, noisy.reshape(2, 2, 4, 4).imag], 1), snr)
        got = net.decode(noisy, snr[:, 0], image_size=(64, 64))
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def test_stage1_only_checkpoint_and_cbr_mismatch(tmp_path):
    ref = _reference(seed=3)
    ckpt = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": ref.state_dict()}, ckpt)
    assert load_jscc(str(ckpt), "1/384").channels == C
    with pytest.raises(ValueError, match="CBR 1/384.*asks for CBR 1/96"):
        load_jscc(str(ckpt), "1/96")


def test_rayleigh_csi_checkpoint_and_foreign_keys_are_refused_in_one_line(tmp_path):
    from linksim.codecs.jscc.diffjscc_cnn import load_published_diffjscc

    ray = tmp_path / "rayleigh.ckpt"
    _full_checkpoint(_reference(ext=3), ray)
    with pytest.raises(ValueError, match="Rayleigh-CSI") as err:
        load_published_diffjscc(ray)
    assert "\n" not in str(err.value)
    odd = tmp_path / "odd.ckpt"
    state = _reference().state_dict()
    state["E.extra_head.weight"] = torch.zeros(1)
    torch.save(state, odd)
    with pytest.raises(ValueError, match="E.extra_head.weight"):
        load_published_diffjscc(odd)
