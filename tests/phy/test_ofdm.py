"""OFDMLink: grid arithmetic, noise and power conventions, time/frequency equivalence, operator, gradients."""

import math

import pytest
import torch

from linksim.phy.channels import complex_normal
from linksim.phy.links import GridError, LinkConfig
from linksim.phy.ofdm import OFDMLink


def _qpsk(b, n, g, dtype=torch.complex64):
    bits = torch.randint(0, 2, (b, n, 2), generator=g).to(torch.float64)
    return torch.complex(1 - 2 * bits[..., 0], 1 - 2 * bits[..., 1]).to(dtype) / math.sqrt(2)


def _gauss(b, n, g, dtype=torch.complex64):
    return complex_normal((b, n), g, dtype)


# ------------------------------------------------------------------ grid / CBR arithmetic
def test_grid_arithmetic_single_frame():
    info = OFDMLink.grid_for(LinkConfig(kind="ofdm"), 1024)
    assert (info.num_data, info.num_frames, info.subcarriers) == (1024, 1, 64)
    assert (info.data_symbols, info.pilot_symbols, info.pilot_res) == (16, 1, 64)
    assert info.cp_samples == 12 * 17
    assert info.overhead == pytest.approx((64 + 204) / 1024)
    link = OFDMLink(LinkConfig(kind="ofdm"), 1024)
    assert link.grid() == info
    assert link.data_ind.numel() == 16 * 64  # data REs counted, pilots not


def test_grid_arithmetic_multi_frame_and_errors():
    cfg = LinkConfig(kind="ofdm", subcarriers=64, pilot_symbols=2, cp=8)
    info = OFDMLink.grid_for(cfg, 3072)
    assert (info.num_frames, info.pilot_res, info.cp_samples) == (3, 3 * 2 * 64, 3 * 18 * 8)
    with pytest.raises(GridError, match=r"N=1000 data symbols do not fill whole frames of 16 x 64 = 1024 REs"):
        OFDMLink.grid_for(cfg, 1000)
    with pytest.raises(GridError, match=r"N=1000 data symbols are not a multiple of data_symbols=16"):
        OFDMLink.grid_for(LinkConfig(kind="ofdm", data_symbols=16), 1000)  # 1000 = 62.5 x 16
    with pytest.raises(GridError, match="cyclic prefix"):
        OFDMLink.grid_for(LinkConfig(kind="ofdm", cp=12), 16 * 8)


def test_rejects_channel_longer_than_cp():
    with pytest.raises(ValueError, match="cyclic prefix"):
        OFDMLink(LinkConfig(kind="ofdm", paths=14, cp=12), 1024)


# ------------------------------------------------------------------ noise and power
@pytest.mark.parametrize("domain", ["freq", "time"])
def test_noise_variance_per_re_is_n0(domain):
    link = OFDMLink(LinkConfig(kind="ofdm", estimator="perfect"), 1024, domain=domain)
    g = torch.Generator().manual_seed(0)
    b, no = 8, 0.3
    r = link.generate(b, g)
    x = _qpsk(b, 1024, g)
    out = link.transmit(x, r, no, g)
    n = (out.y - r.h * link.map(x)).to(torch.complex128)  # every RE, pilots included
    count = n.numel()
    var = n.abs().square().mean().item()
    # chi-square with 2*count dof: relative std sqrt(1/count) = 0.27 %; allow 5 sigma
    assert var == pytest.approx(no, rel=5 / math.sqrt(count))
    assert n.real.var().item() == pytest.approx(no / 2, rel=5 * math.sqrt(2 / count))
    assert n.imag.var().item() == pytest.approx(no / 2, rel=5 * math.sqrt(2 / count))


def test_received_snr_is_one_over_n0_on_average():
    # Time-domain waveform, unit-energy taps on average: E|y_data|^2 = E[Σ|h|²] E|x|² + N0 = 1 + N0.
    link = OFDMLink(LinkConfig(kind="ofdm", estimator="perfect"), 1024, domain="time")
    g = torch.Generator().manual_seed(1)
    b, no = 1000, 0.1
    r = link.generate(b, g)
    x = _qpsk(b, 1024, g)
    out = link.transmit(x, r, no, g)
    sig = link.extract(out.y).abs().square().to(torch.float64).mean().item() - no
    # channel energy per example has variance Σ p_l² ~ 0.13: std of the mean ~ 1.1 %; 4 sigma
    assert sig == pytest.approx(1.0, abs=0.05)
    assert 10 * math.log10(sig / no) == pytest.approx(10.0, abs=0.25)


# ------------------------------------------------------------------ time == frequency domain
@pytest.mark.parametrize("clip", [None, 1.2])
def test_time_and_frequency_domain_agree(clip):
    cfg = LinkConfig(kind="ofdm", paths=13, cp=12, decay=6.0, estimator="perfect", clip_ratio=clip)
    lt = OFDMLink(cfg, 2048, domain="time", precision="double")
    lf = OFDMLink(cfg, 2048, domain="freq", precision="double")
    g = torch.Generator().manual_seed(2)
    r = lt.generate(3, g)
    x = _gauss(3, 2048, g, torch.complex128)
    yt = lt.transmit(x, r, 0.0, torch.Generator().manual_seed(0)).y
    yf = lf.transmit(x, r, 0.0, torch.Generator().manual_seed(0)).y
    torch.testing.assert_close(yt, yf, rtol=0, atol=1e-12)


def test_clipping_limits_the_waveform():
    link = OFDMLink(LinkConfig(kind="ofdm", clip_ratio=1.5), 1024)
    g = torch.Generator().manual_seed(3)
    xg = link.map(_gauss(4, 1024, g))
    raw = link.modulator(xg)
    clipped = link.waveform(xg)
    rms = raw.abs().square().mean(dim=(1, 2), keepdim=True).sqrt()
    assert (clipped.abs() <= 1.5 * rms * (1 + 1e-5)).all()
    assert (raw.abs() > 1.5 * rms).any()  # Gaussian-like OFDM samples exceed 1.5 x rms (p ~ 0.1)
    keep = raw.abs() <= 1.5 * rms
    torch.testing.assert_close(clipped[keep], raw[keep])


# ------------------------------------------------------------------ equalisation and forward operator
@pytest.mark.parametrize("domain", ["freq", "time"])
def test_perfect_csi_zf_recovers_symbols_at_high_snr(domain):
    link = OFDMLink(LinkConfig(kind="ofdm", estimator="perfect", equalizer="zf"), 2048, domain=domain)
    g = torch.Generator().manual_seed(4)
    x = _qpsk(4, 2048, g)
    r = link.generate(4, g)
    out = link.transmit(x, r, 1e-6, g)
    dec = torch.complex(out.y_eq.real.sign(), out.y_eq.imag.sign()) / math.sqrt(2)
    assert torch.equal(dec, x)
    assert out.err_var is None and torch.equal(out.h_hat, r.h)


@pytest.mark.parametrize("domain,clip,estimator", [("time", None, "ls"), ("freq", None, "lmmse"),
                                                   ("time", 2.0, "perfect"), ("freq", 1.5, "ls")])
def test_noise_free_equals_y_eq_minus_equalised_noise(domain, clip, estimator):
    link = OFDMLink(LinkConfig(kind="ofdm", estimator=estimator, clip_ratio=clip), 1024, domain=domain,
                    precision="double")
    g = torch.Generator().manual_seed(5)
    b, no = 3, 0.05
    r = link.generate(b, g)
    x = _gauss(b, 1024, g, torch.complex128)
    g_noise = torch.Generator().manual_seed(9)
    out = link.transmit(x, r, no, g_noise)
    # Re-draw the very same noise and take it through the receiver's front end.
    g_copy = torch.Generator().manual_seed(9)
    if domain == "time":
        n = link.demodulator(complex_normal(link.waveform(link.map(x)).shape, g_copy, torch.complex128))
    else:
        n = complex_normal(r.h.shape, g_copy, torch.complex128)
    expected = out.y_eq - link.extract(out.weights * n * math.sqrt(no))
    torch.testing.assert_close(link.noise_free(x, r, out, use_true_channel=True), expected, rtol=0, atol=1e-10)
    if estimator != "perfect":  # with h_hat the operator differs from the true one
        assert (link.noise_free(x, r, out) - expected).abs().max() > 1e-3


def test_gradient_matches_finite_differences_ls():
    cfg = LinkConfig(kind="ofdm", subcarriers=8, data_symbols=2, cp=3, paths=4, decay=2.0, estimator="ls")
    link = OFDMLink(cfg, 32, domain="time", precision="double")
    g = torch.Generator().manual_seed(6)
    r = link.generate(2, g)
    x0 = _gauss(2, 32, g, torch.complex128)
    c = _gauss(2, 32, g, torch.complex128)

    def loss_transmit(x):  # frozen channel and noise: the same generator seed every call
        y = link.transmit(x, r, 0.1, torch.Generator().manual_seed(11)).y_eq
        return (y * c).real.sum() + 0.3 * y.abs().pow(4).sum()

    out = link.transmit(x0, r, 0.1, torch.Generator().manual_seed(11))

    def loss_operator(x):
        y = link.noise_free(x, r, out)
        return (y * c).real.sum() + 0.3 * y.abs().pow(4).sum()

    for loss in (loss_transmit, loss_operator):
        x = x0.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(x), x)
        eps = 1e-6
        for i, j in [(0, 0), (0, 17), (1, 5), (1, 31)]:
            for unit in (1.0, 1j):
                d = torch.zeros_like(x0)
                d[i, j] = eps * unit
                fd = (loss(x0 + d) - loss(x0 - d)).item() / (2 * eps)
                an = grad[i, j].real.item() if unit == 1.0 else grad[i, j].imag.item()
                assert an == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_tdl_link_runs_and_rejects_time_domain():
    cfg = LinkConfig(kind="tdl", tdl_model="A", delay_spread=300e-9, estimator="lmmse")
    link = OFDMLink(cfg, 1024)
    g = torch.Generator().manual_seed(7)
    r = link.generate(64, g)
    assert r.h.shape == (64, 1, 17, 64)
    assert r.h.abs().square().mean().item() == pytest.approx(1.0, abs=0.15)
    out = link.transmit(_qpsk(64, 1024, g), r, 0.01, g)
    assert out.y_eq.shape == (64, 1024) and out.no_eff.shape == (64, 1024)
    with pytest.raises(ValueError, match="time"):
        OFDMLink(cfg, 1024, domain="time")
    with pytest.raises(ValueError, match="cyclic prefix"):
        OFDMLink(LinkConfig(kind="tdl", tdl_model="A", delay_spread=3e-6), 1024)
