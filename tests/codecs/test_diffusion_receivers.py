"""DiffCom / HiFi-DiffCom / Blind-DiffCom receivers on tiny CPU cases.

The prior is an exactly-known Gaussian ``x0 ~ N(mu, s² I)`` (closed-form ε), the JSCC a tiny
randomly initialised ADJSCC: the tests check the receiver mechanics (A(x), determinism, that
guidance moves samples toward the measurement), not image quality.
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from torch import nn

from linksim.codecs.base import RxSignal
from linksim.codecs.diffusion.blind import BlindDiffCom, taps_frequency_matrix
from linksim.codecs.diffusion.diffcom import DiffCom
from linksim.codecs.diffusion.hifi import HiFiDiffCom, t_start
from linksim.codecs.diffusion.sampler import linear_alphas_cumprod, spaced_steps
from linksim.codecs.jscc.adjscc import ADJSCC
from linksim.phy.chains import AnalogChain
from linksim.phy.links import LinkConfig
from linksim.phy.multipath import pdp


class GaussianPrior(nn.Module):
    """Stand-in prior: x0 ~ N(mu, s² I) ⇒ eps(x_t, t) = √(1−ᾱ)(x_t − √ᾱ mu)/(ᾱ s² + 1 − ᾱ) exactly."""

    def __init__(self, mu: float = 0.0, s: float = 0.5, num_timesteps: int = 1000):
        super().__init__()
        self.num_timesteps = num_timesteps
        self.betas = torch.linspace(1e-4, 0.02, num_timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, 0)
        self.learned_sigma = False
        self.mu, self.s = mu, s
        self.calls = 0

    def _a(self, t):
        return self.alphas_cumprod.to(torch.float32)[t].reshape(-1, 1, 1, 1)

    def eps(self, x_t, t):
        self.calls += 1
        a = self._a(t)
        return (1 - a).sqrt() * (x_t - a.sqrt() * self.mu) / (a * self.s**2 + 1 - a)

    def predict_x0(self, x_t, t, eps):
        a = self._a(t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


class LinearJSCC(nn.Module):
    """Stand-in JSCC with a well-conditioned random linear encoder (a random-init ADJSCC is nearly
    constant in its input, so guidance through it has nothing to pull on); decode = least squares."""

    def __init__(self, size=16, num_symbols=64, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(2 * num_symbols, 3 * size * size, generator=g) / (3 * size * size) ** 0.5)
        self.size = size

    def encode(self, images, csnr_db):
        z = (images.flatten(1) - 0.5) @ self.w.T
        x = torch.view_as_complex(z.reshape(z.shape[0], -1, 2).contiguous())
        return x * torch.rsqrt(x.abs().square().mean(-1, keepdim=True))

    def decode(self, y, csnr_db, no_eff=None, image_size=None, tx_scale=None):
        z = torch.view_as_real(y).reshape(y.shape[0], -1)
        img = z @ torch.linalg.pinv(self.w).T * 0.1 + 0.5
        return img.reshape(y.shape[0], 3, self.size, self.size)


def _jscc(channels=2, filters=8, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ADJSCC(channels=channels, filters=filters).eval()


def _images(b, size, seed):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.25 * torch.randn(b, 3, size, size, generator=g)).clamp(0, 1)


def _send(jscc, images, cfg, csnr_db, seed=1):
    x = jscc.encode(images, csnr_db).detach()
    chain = AnalogChain(cfg, x.shape[1])
    g = torch.Generator().manual_seed(seed)
    y, state = chain(x, 10 ** (-csnr_db / 10), g)
    return x, y, state, chain


def test_t_start_vector_and_actual_cbr():
    ac = linear_alphas_cumprod(1000)
    got = [t_start(c, "1/48", ac) for c in (-5, 0, 1, 5, 10, 15, 20)]
    assert got == [256, 252, 251, 245, 235, 225, 215]
    # the actual ρ enters: more symbols -> a higher DSNR -> an earlier (smaller) start
    assert t_start(10, "1/24", ac) < t_start(10, "1/48", ac)
    assert t_start(10, 1 / 16, ac) < t_start(10, 1 / 24, ac)


def test_spaced_steps():
    assert spaced_steps(999, 4) == [999, 666, 333, 0]
    assert spaced_steps(5, 100) == [5, 4, 3, 2, 1, 0]
    assert spaced_steps(7, 1) == [7]


def test_forward_operator_resimulates_jscc_chain():
    """A(x_true) with the true channel = y_eq minus the equalised noise (OFDM, LS estimate)."""
    jscc = _jscc()
    images = _images(2, 32, 0)
    cfg = LinkConfig(kind="ofdm", paths=4, cp=4, data_symbols=4, estimator="ls", equalizer="mmse")
    x, y, state, chain = _send(jscc, images, cfg, 10.0)
    rx = DiffCom(GaussianPrior(), jscc, 10.0, (32, 32))
    a_true = state.forward_operator(rx.encode(images * 2 - 1), use_true_channel=True)
    link, out = state.link, state.output
    xs = x[..., state.perm]
    noise_grid = out.y - state.realization.h * link.map(xs)
    eq_noise = link.extract(out.weights["w"] * noise_grid)[..., torch.argsort(state.perm)]
    torch.testing.assert_close(a_true, y - eq_noise, atol=2e-5, rtol=1e-4)
    # the tap frequency matrix reproduces the link's channel (Blind-DiffCom's operator)
    hf = state.realization.extra["a"] @ taps_frequency_matrix(link.num_subcarriers, 4).T
    torch.testing.assert_close(hf, state.realization.h[:, 0, 0, :], atol=1e-5, rtol=1e-5)


def test_biased_mmse_residual_weight():
    """OFDM + LMMSE: the residual of symbol k is scaled by b_k = 1/(1 + no_eff_k) (the biased MMSE
    output of the reference code); AWGN and ``measurement="unbiased"`` weigh every symbol by 1."""
    jscc = _jscc()
    images = _images(2, 32, 0)
    cfg = LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=4, estimator="lmmse", equalizer="mmse")
    _, y, state, _ = _send(jscc, images, cfg, 5.0)
    rx = RxSignal(y=y, state=state, tx_meta={"tx_scale": None})
    r = DiffCom(GaussianPrior(), jscc, 5.0, (32, 32))
    ctx = r.prepare(rx, state)
    b = ctx["weight"]
    assert b.shape == y.shape
    torch.testing.assert_close(b, 1 / (1 + state.no_eff.real.float()))
    # on a multipath channel at 5 dB some subcarriers are deep fades: the weights really spread
    assert b.min() < 0.3 and b.max() > 0.85
    x0 = images * 2 - 1
    y_sim = state.forward_operator(r.encode(x0))
    torch.testing.assert_close(r.guide(x0, ctx, 0), ((y - y_sim) * b).abs().square().sum(-1).sqrt())
    u = DiffCom(GaussianPrior(), jscc, 5.0, (32, 32), measurement="unbiased")
    assert u.prepare(rx, state)["weight"] is None
    torch.testing.assert_close(u.guide(x0, u.prepare(rx, state), 0), r.measurement_residual(x0, ctx))
    _, ya, sa, _ = _send(jscc, images, LinkConfig(kind="awgn"), 5.0)
    assert r.prepare(RxSignal(y=ya, state=sa, tx_meta={}), sa)["weight"] is None
    with pytest.raises(ValueError, match="measurement"):
        DiffCom(GaussianPrior(), jscc, 5.0, (32, 32), measurement="whitened")


def _awgn_case(csnr_db=10.0, b=2, size=16):
    jscc = LinearJSCC(size)
    images = _images(b, size, 3)
    x, y, state, _ = _send(jscc, images, LinkConfig(kind="awgn"), csnr_db)
    return jscc, images, RxSignal(y=y, state=state, tx_meta={"tx_scale": None})


def test_diffcom_deterministic_and_nfe():
    jscc, _, rx = _awgn_case()
    prior = GaussianPrior()
    r = DiffCom(prior, jscc, 10.0, (16, 16), num_steps=10)
    d1 = r.decode(rx, generator=torch.Generator().manual_seed(7))
    d2 = r.decode(rx, generator=torch.Generator().manual_seed(7))
    d3 = r.decode(rx, generator=torch.Generator().manual_seed(8))
    assert torch.equal(d1.images, d2.images)
    assert not torch.equal(d1.images, d3.images)
    assert d1.nfe == 10 and prior.calls == 30
    assert d1.images.shape == (2, 3, 16, 16) and 0 <= d1.images.min() and d1.images.max() <= 1


@pytest.mark.parametrize("kind", ["diffcom", "hifi"])
def test_guidance_reduces_measurement_residual(kind):
    jscc, images, rx = _awgn_case()
    prior = GaussianPrior()

    def run(zeta, gamma=0.0):
        if kind == "diffcom":
            r = DiffCom(prior, jscc, 10.0, (16, 16), num_steps=50, zeta=zeta)
        else:
            r = HiFiDiffCom(prior, jscc, 10.0, "1/48", (16, 16), zeta=zeta, gamma=gamma, step_scale=0.2)
        ctx = r.prepare(rx, rx.state)
        res = r.sample(ctx, torch.Generator().manual_seed(11))
        return r.measurement_residual(res.x0, ctx), res

    guided, res = run(1.0, 0.25)
    free, _ = run(0.0)
    noise = (10 ** -1 * rx.y.shape[1]) ** 0.5  # ‖n‖ expected at 10 dB
    print(kind, guided, free, noise, res.nfe)
    assert (guided < 0.7 * free).all()


def test_blind_diffcom_estimates_taps():
    """10 dB, 4 taps, no channel estimate used: with the published ζ=1, lr_x 1->0, lr_h 0.2->0 and
    500 steps the joint sampler's tap NMSE is far below the prior mean's 1 (measured 0.05 / 0.17;
    the pilot-based LS estimate of the same grid scores 0.11 / 0.30 on the frequency response).
    Fewer steps do worse (60 steps: 0.58 / 0.74): the unsquared-norm step does not shrink near
    the optimum, only the decaying lr does."""
    jscc = LinearJSCC(16)
    images = _images(2, 16, 5)
    cfg = LinkConfig(kind="ofdm", paths=4, decay=4.0, cp=4, data_symbols=4, estimator="ls")
    x, y, state, _ = _send(jscc, images, cfg, 10.0, seed=2)
    rx = RxSignal(y=y, state=state, tx_meta={})
    r = BlindDiffCom(GaussianPrior(), jscc, 10.0, (16, 16), pdp(4, 4.0), num_steps=500)
    d = r.decode(rx, generator=torch.Generator().manual_seed(3))
    assert d.nfe == 500
    assert (d.extras["channel_nmse"] < 0.3).all(), d.extras["channel_nmse"]


def test_methods_registered_and_prior_error(tmp_path, monkeypatch):
    from fractions import Fraction

    from linksim.codecs.diffusion import method as dmethod
    from linksim.codecs.base import OperatingPoint
    from linksim.codecs.diffusion.method import DiffComMethod, HiFiDiffComMethod, load_prior
    from linksim.method_configs import BlindDiffComConfig, DiffComConfig, HiFiDiffComConfig
    from linksim.registry import METHODS

    for kind in ("diffcom", "hifi_diffcom", "blind_diffcom"):
        assert kind in METHODS
    assert dmethod.EMBEDDED_PRIOR.is_dir()  # shipped
    # an installation without the embedded prior (e.g. a stripped wheel): one clear error
    monkeypatch.setattr(dmethod, "EMBEDDED_PRIOR", tmp_path / "embedded" / "ddpm")
    with pytest.raises(FileNotFoundError, match=r"embedded/ddpm does not exist"):
        load_prior("embedded")
    point = OperatingPoint(csnr_db=10.0, cbr=Fraction(1, 48), link=LinkConfig(kind="awgn"), image_shape=(16, 16))
    jscc = _jscc()
    m = DiffComMethod(DiffComConfig(kind="diffcom", num_steps=3), point, prior=GaussianPrior(), jscc=jscc)
    tx = m.encode(_images(1, 16, 0), torch.Generator().manual_seed(0))
    rx = m.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    d = m.decode(rx, torch.Generator().manual_seed(3))
    assert d.nfe == 3 and d.images.shape == (1, 3, 16, 16)
    h = HiFiDiffComMethod(HiFiDiffComConfig(kind="hifi_diffcom", step_scale=0.02), point, prior=GaussianPrior(),
                          jscc=jscc)
    assert h.receiver.t_start == 235 and h.receiver.zeta == 0.25
    assert h.decode(h.channel(tx, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)),
                    torch.Generator().manual_seed(3)).nfe == 5
    assert BlindDiffComConfig(kind="blind_diffcom").lr_h == 0.2
    # static checks before any work: missing priors and non-OFDM blind links are one-line errors
    from linksim.codecs.diffusion.method import BlindDiffComMethod

    with pytest.raises(ValueError, match="no embedded diffusion prior"):
        DiffComMethod.check(DiffComConfig(kind="diffcom", jscc="embedded"), point)
    with pytest.raises(ValueError, match="neither 'embedded'"):
        DiffComMethod.check(DiffComConfig(kind="diffcom", prior=str(tmp_path / "none.pt")), point)
    with pytest.raises(ValueError, match="needs an OFDM channel"):
        BlindDiffComMethod.check(BlindDiffComConfig(kind="blind_diffcom", prior=str(tmp_path)), point)


class _TinyEps(nn.Module):
    """A diffusers-free eps network (one conv; 6 output channels = eps + learned-variance v)."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x, t):
        return torch.tanh(self.conv(x))


def test_real_prior_learned_sigma_consecutive_and_strided():
    """With the project's Prior (learned sigma), consecutive steps take its variance, strided ones
    the respaced posterior variance; both are deterministic and count one NFE per step."""
    from linksim.codecs.diffusion.prior import Prior
    from linksim.codecs.diffusion.schedules import linear_betas

    prior = Prior(_TinyEps(), linear_betas(50), learned_sigma=True)  # T=20 would rescale beta_end to 1
    jscc, _, rx = _awgn_case(b=1)
    full = DiffCom(prior, jscc, 10.0, (16, 16))
    with mock.patch.object(prior, "p_sample_stats", wraps=prior.p_sample_stats) as stats:
        d1 = full.decode(rx, generator=torch.Generator().manual_seed(1))
    assert stats.call_count == 50  # the prior's own (learned) variance on every consecutive step
    d2 = full.decode(rx, generator=torch.Generator().manual_seed(1))
    assert d1.nfe == 50 and torch.equal(d1.images, d2.images) and torch.isfinite(d1.images).all()
    strided = DiffCom(prior, jscc, 10.0, (16, 16), num_steps=5, record_metrics=True)
    ctx = strided.prepare(rx, rx.state)
    with mock.patch.object(prior, "p_sample_stats", wraps=prior.p_sample_stats) as stats:
        res = strided.sample(ctx, torch.Generator().manual_seed(1))
    assert stats.call_count == 1  # only the final step t=0 -> x0 is consecutive (no noise there)
    assert res.nfe == 5 and res.trace["t"] == [49, 37, 24, 12, 0] and len(res.trace["loss"]) == 5
    assert torch.isfinite(res.x0).all()


def test_hifi_init_from_jscc_decode_and_autocast():
    jscc, _, rx = _awgn_case(b=1)
    prior = GaussianPrior()
    r = HiFiDiffCom(prior, jscc, 10.0, "1/12", (16, 16), step_scale=0.1)
    ctx = r.prepare(rx, rx.state)
    x_mse = jscc.decode(rx.y, 10.0).clamp(0, 1)
    torch.testing.assert_close(ctx["x_mse"], x_mse)
    a = float(prior.alphas_cumprod[r.t_start])
    eps = torch.randn(x_mse.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(r.init(ctx, torch.Generator().manual_seed(5)),
                               a**0.5 * (2 * x_mse - 1) + (1 - a) ** 0.5 * eps)
    assert r.timesteps()[0] == r.t_start == t_start(10.0, "1/12", prior.alphas_cumprod)
    # autocast (bfloat16 on CPU) runs the project's Prior in reduced precision: close, not equal
    from linksim.codecs.diffusion.prior import Prior
    from linksim.codecs.diffusion.schedules import linear_betas

    p = Prior(_TinyEps(), linear_betas(50), learned_sigma=True)
    out = [DiffCom(p, jscc, 10.0, (16, 16), num_steps=5, autocast=ac).decode(
        rx, generator=torch.Generator().manual_seed(1)).images for ac in (False, True)]
    assert not torch.equal(out[0], out[1]) and (out[0] - out[1]).abs().mean() < 0.05


@pytest.mark.parametrize("cfg", [LinkConfig(kind="awgn"), LinkConfig(kind="ofdm", paths=4, cp=4, data_symbols=4)],
                         ids=["awgn", "ofdm"])
def test_guidance_through_embedded_adjscc(cfg):
    """The project's trained ADJSCC (C=2, 32x32) as A over AWGN and OFDM (LMMSE estimate): 50
    guided steps cut the guided residual ‖w ⊙ (y − A(x̂))‖ well below unguided sampling (AWGN,
    w = 1: measured 2.0 vs 6.2, the true image's residual — the noise — is 2.6; OFDM with the
    MMSE-bias weights: 2.6/2.9 vs 5.8/5.4)."""
    from linksim.codecs.jscc.adjscc import embedded_path, load_embedded

    if not embedded_path("1/48").is_file():
        pytest.skip("embedded ADJSCC C=2 not present")
    jscc = load_embedded("1/48")
    images = _images(2, 32, 3)
    _, y, state, _ = _send(jscc, images, cfg, 10.0)
    rx = RxSignal(y=y, state=state, tx_meta={"tx_scale": None})
    res = {}
    for zeta in (1.0, 0.0):
        r = DiffCom(GaussianPrior(), jscc, 10.0, (32, 32), num_steps=50, zeta=zeta)
        ctx = r.prepare(rx, state)
        x0 = r.sample(ctx, torch.Generator().manual_seed(1)).x0
        with torch.no_grad():  # the objective guidance minimises (MMSE-bias weighted on OFDM)
            res[zeta] = r.residual_norm(state.forward_operator(r.encode(x0)), ctx)
    assert (res[1.0] < 0.7 * res[0.0]).all(), res
