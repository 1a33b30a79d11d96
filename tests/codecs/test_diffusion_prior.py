"""Diffusion priors: ADM architecture vs published key/shape tables, loaders, DDPM maths, schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from linksim.codecs.diffusion import (
    PRIOR_CONFIGS,
    ADMUNet,
    Prior,
    linear_betas,
    load_prior,
    log_snr,
    spaced_timesteps,
)
from linksim.codecs.diffusion.adm_unet import AttentionBlock
from linksim.codecs.diffusion.schedules import cosine_betas, respaced_betas

FIXTURES = Path(__file__).parent / "fixtures"

# A small ADM (same construction rules, 3 levels, attention at 16 and 8 px) for real forwards.
TINY_ADM = dict(
    image_size=32,
    model_channels=32,
    num_res_blocks=1,
    attention_resolutions="16,8",
    channel_mult=(1, 2, 2),
    num_head_channels=16,
    learn_sigma=True,
    resblock_updown=True,
    use_scale_shift_norm=True,
)


def _randomize(module: nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded noise (ADM zero-inits several convs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


# -- architecture ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ffhq_10m", "imagenet256_uncond"])
def test_adm_state_dict_matches_published_layout(name):
    """Keys and shapes equal the table derived independently from guided-diffusion's rules."""
    fixture = json.loads((FIXTURES / f"adm_{name}.json").read_text())
    with torch.device("meta"):
        net = ADMUNet(**PRIOR_CONFIGS[name])
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    expected = fixture["shapes"]
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    mismatched = {k: (ours[k], expected[k]) for k in expected if ours[k] != expected[k]}
    assert mismatched == {}
    assert sum(v.numel() for v in net.state_dict().values()) == fixture["num_params"]
    assert not any(k.startswith("label_emb") for k in ours)


def test_attention_head_order_is_legacy_adm():
    """SDPA path equals the explicit heads-then-(q,k,v) attention the checkpoints were trained with."""
    torch.manual_seed(0)
    block = AttentionBlock(64, num_head_channels=16)
    _randomize(block, 1)
    x = torch.randn(2, 64, 4, 4)
    b, c = 2, 64
    heads, ch = 4, 16
    qkv = block.qkv(block.norm(x.reshape(b, c, -1)))
    q, k, v = qkv.reshape(b * heads, 3 * ch, 16).split(ch, dim=1)
    w = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(ch), dim=-1)
    h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, 16)
    ref = (x.reshape(b, c, -1) + block.proj_out(h)).reshape(x.shape)
    torch.testing.assert_close(block(x), ref, rtol=1e-5, atol=1e-5)


def test_tiny_adm_checkpoint_round_trip(tmp_path):
    net = ADMUNet(**TINY_ADM)
    _randomize(net, 2)
    ckpt = tmp_path / "tiny_adm.pt"
    torch.save(net.state_dict(), ckpt)
    prior = load_prior({"path": ckpt, "config": TINY_ADM}, "cpu")
    assert prior.learned_sigma and prior.num_timesteps == 1000
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 32, 32, generator=g)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        out = net(x, t)
        eps, var = prior.model_output(x, t)
    assert out.shape == (2, 6, 32, 32)
    torch.testing.assert_close(eps, out[:, :3], rtol=0, atol=0)
    assert var is not None and var.shape == (2, 3, 32, 32)
    assert eps.abs().mean() > 0.01  # random weights: a non-trivial output
    # Guidance differentiates through the frozen prior w.r.t. x_t.
    x_req = x.clone().requires_grad_(True)
    prior.eps(x_req, t).square().sum().backward()
    assert x_req.grad is not None and x_req.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())
    # A checkpoint missing one tensor is refused (strict loading).
    sd = net.state_dict()
    sd.pop("out.2.bias")
    torch.save(sd, ckpt)
    with pytest.raises(RuntimeError, match="out.2.bias"):
        load_prior(ckpt, config=TINY_ADM)


def test_missing_published_checkpoint_names_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ffhq_10m.pt.*diffusion-posterior-sampling"):
        load_prior(tmp_path / "ffhq_10m.pt")
    with pytest.raises(FileNotFoundError, match="openaipublic"):
        load_prior(tmp_path / "256x256_diffusion_uncond.pt")
    with pytest.raises(FileNotFoundError, match="ffhq_10m.pt"):
        load_prior("ffhq_10m", "cpu")  # published name, looked up in the weights directory
    with pytest.raises(ValueError, match="unknown ADM config"):
        load_prior(tmp_path / "x.pt", config="nope")


# -- diffusers ------------------------------------------------------------------------------


def _tiny_unet2d(out_channels: int):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(32, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


@pytest.mark.parametrize("variance_type", ["learned_range", "fixed_small"])
def test_diffusers_round_trip(tmp_path, variance_type):
    from diffusers import DDPMScheduler

    learned = variance_type == "learned_range"
    unet = _tiny_unet2d(6 if learned else 3)
    _randomize(unet, 4)
    unet.save_pretrained(tmp_path / "unet")
    DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", variance_type=variance_type
    ).save_pretrained(tmp_path / "scheduler")
    prior = load_prior(tmp_path)
    assert prior.learned_sigma is learned
    torch.testing.assert_close(prior.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 16, 16, generator=g)
    t = torch.tensor([3, 700])
    with torch.no_grad():
        ref = unet(x, t).sample[:, :3]
        eps = prior.eps(x, t)
    torch.testing.assert_close(eps, ref, rtol=0, atol=0)
    assert ref.abs().mean() > 0.01


def test_diffusers_missing_scheduler_and_wrong_prediction(tmp_path):
    from diffusers import DDPMScheduler

    _tiny_unet2d(3).save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="scheduler config"):
        load_prior(tmp_path)
    DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="epsilon"):
        load_prior(tmp_path)


# -- DDPM maths -----------------------------------------------------------------------------


class _ConstNet(nn.Module):
    """Returns fixed eps and variance interpolant v (to test the Prior's formulas in isolation)."""

    def __init__(self, eps: torch.Tensor, v: float | None):
        super().__init__()
        self.eps, self.v = eps, v
        self.seen_t = None

    def forward(self, x, t):
        self.seen_t = t
        out = self.eps.expand_as(x)
        if self.v is None:
            return out
        return torch.cat([out, torch.full_like(x, self.v)], dim=1)


def _data(seed=0, shape=(3, 3, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(
        shape, generator=g, dtype=torch.float64
    )


def test_predict_x0_inverts_forward_noising():
    prior = Prior(nn.Identity(), linear_betas(), learned_sigma=False)
    x0, eps = _data()
    t = torch.tensor([0, 500, 999])
    x_t = prior.q_sample(x0, t, eps)
    torch.testing.assert_close(prior.predict_x0(x_t, t, eps), x0, rtol=0, atol=1e-10)
    # float32 too, with a tolerance scaled by 1/sqrt(abar_999) ~ 157.
    x0f = prior.predict_x0(x_t.float(), t, eps.float())
    torch.testing.assert_close(x0f.double(), x0, rtol=0, atol=2e-4)


@pytest.mark.parametrize("t_val", [1, 10, 250, 999])
def test_posterior_mean_variance_closed_form(t_val):
    prior = Prior(nn.Identity(), linear_betas(), learned_sigma=False)
    b = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - b, 0)
    x0, eps = _data(1)
    t = torch.full((3,), t_val)
    x_t = prior.q_sample(x0, t, eps)
    mean, var, log_var = prior.posterior_mean_variance(x0, x_t, t)
    bt, at, ap = b[t_val], abar[t_val], abar[t_val - 1]
    ref_mean = ap.sqrt() * bt / (1 - at) * x0 + (1 - bt).sqrt() * (1 - ap) / (1 - at) * x_t
    ref_var = (1 - ap) / (1 - at) * bt
    torch.testing.assert_close(mean, ref_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var.flatten(), ref_var.expand(3), rtol=1e-12, atol=0)
    torch.testing.assert_close(log_var.flatten(), ref_var.log().expand(3), rtol=1e-12, atol=0)
    # With x0 = Tweedie(eps), the mean is DDPM's eps form (Ho et al. eq. 11).
    x0_hat = prior.predict_x0(x_t, t, eps)
    mean_eps = (x_t - bt / (1 - at).sqrt() * eps) / (1 - bt).sqrt()
    torch.testing.assert_close(prior.posterior_mean_variance(x0_hat, x_t, t)[0], mean_eps)


def test_learned_range_variance_endpoints_and_sample_stats():
    """v = +1 gives beta_t, v = -1 the clipped posterior variance, v = 0 their geometric mean."""
    betas = linear_betas()
    x_t, eps = _data(2)
    t = torch.tensor([0, 5, 999])
    vars_ = {}
    for v in (1.0, -1.0, 0.0):
        prior = Prior(_ConstNet(eps, v), betas, learned_sigma=True)
        mean, var, x0_hat, e = prior.p_sample_stats(x_t, t)
        vars_[v] = var[:, 0, 0, 0]
        torch.testing.assert_close(e, eps)
        torch.testing.assert_close(x0_hat, prior.predict_x0(x_t, t, eps))
        torch.testing.assert_close(mean, prior.posterior_mean_variance(x0_hat, x_t, t)[0])
    torch.testing.assert_close(vars_[1.0], betas[t])
    post = prior.posterior_variance
    torch.testing.assert_close(vars_[-1.0], torch.stack([post[1], post[5], post[999]]))
    torch.testing.assert_close(vars_[0.0], (vars_[1.0] * vars_[-1.0]).sqrt())
    # Fixed sigma: "large" = beta_t (t >= 1), "small" = posterior variance.
    large = Prior(_ConstNet(eps, None), betas, learned_sigma=False)
    small = Prior(_ConstNet(eps, None), betas, learned_sigma=False, fixed_variance="small")
    torch.testing.assert_close(large.p_sample_stats(x_t, t)[1].flatten()[1:], betas[t[1:]])
    torch.testing.assert_close(small.p_sample_stats(x_t, t)[1].flatten(), post[t])


# -- schedules ------------------------------------------------------------------------------


def test_linear_schedule_values():
    b = linear_betas(1000)
    assert b.dtype == torch.float64 and b.shape == (1000,)
    assert b[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert b[-1].item() == pytest.approx(0.02, rel=1e-12)
    prior = Prior(nn.Identity(), b, learned_sigma=False)
    # Known value for the DDPM linear schedule: abar_999 = 4.0358e-5.
    assert prior.alphas_cumprod[-1].item() == pytest.approx(4.0358e-5, rel=1e-4)
    assert linear_betas(250)[-1].item() == pytest.approx(0.08, rel=1e-12)  # ADM 1000/T rescale
    c = cosine_betas(1000)
    assert torch.cumprod(1 - c, 0)[0].item() == pytest.approx(
        math.cos((1 / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    )
    assert c.max().item() == pytest.approx(0.999)


def test_log_snr_reproduces_diffcom_adaptive_start():
    """HiFi-DiffCom test vector (rho = 1/48, linear schedule) from the reference facts."""
    abar = torch.cumprod(1 - linear_betas(), 0)
    lsnr10 = (log_snr(abar) / math.log(10)).flip(0).contiguous()
    got = []
    for csnr in (-5, 0, 1, 5, 10, 15, 20):
        dsnr = 5 * math.log10((1 + 10 ** (csnr / 10)) ** (1 / 48))
        got.append(1000 - int(torch.searchsorted(lsnr10, torch.tensor(dsnr, dtype=torch.float64))))
    assert got == [256, 252, 251, 245, 235, 225, 215]


def test_spaced_timesteps_and_respaced_prior():
    assert spaced_timesteps(1000, [10]).tolist() == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    for k in (1, 25, 100, 250, 1000):
        s = spaced_timesteps(1000, k)
        assert len(s) == k and s[0] == 0 and bool((s.diff() > 0).all())
    assert len(spaced_timesteps(1000, "10,15,20")) == 45
    assert spaced_timesteps(1000, "ddim50").tolist() == list(range(0, 1000, 20))
    with pytest.raises(ValueError):
        spaced_timesteps(1000, 1001)
    x_t, eps = _data(3)
    net = _ConstNet(eps, 0.0)
    full = Prior(net, linear_betas(), learned_sigma=True)
    sub = full.respaced(50)
    kept = spaced_timesteps(1000, 50)
    assert sub.num_timesteps == 50 and sub.net is net
    torch.testing.assert_close(sub.alphas_cumprod, full.alphas_cumprod[kept])
    torch.testing.assert_close(sub.betas, respaced_betas(full.alphas_cumprod, kept))
    sub.eps(x_t, torch.tensor([0, 10, 49]))
    assert net.seen_t.tolist() == kept[[0, 10, 49]].tolist()  # network sees original steps
