"""Channel estimation (LS, frequency LMMSE) against theory, and one-tap equalisers against Sionna."""

import math

import pytest
import torch
from sionna.phy.mimo import lmmse_equalizer

from linksim.phy.equalization import effective_noise, equalize, lmmse_weights
from linksim.phy.estimation import lmmse_smooth, lmmse_smooth_eig
from linksim.phy.links import LinkConfig
from linksim.phy.ofdm import OFDMLink


def _run(estimator, no, b=200, kind="ofdm", seed=0, **kw):
    link = OFDMLink(LinkConfig(kind=kind, estimator=estimator, **kw), 1024, precision="double")
    g = torch.Generator().manual_seed(seed)
    r = link.generate(b, g)
    x = torch.zeros(b, 1024, dtype=torch.complex128)  # data is irrelevant to the estimate
    return link, r, link.transmit(x, r, no, g)


@pytest.mark.parametrize("no", [0.1, 0.01])
def test_ls_nmse_equals_n0(no):
    _, r, out = _run("ls", no)
    err = (out.h_hat - r.h)[:, 0, 0]  # one pilot symbol, held over time: all symbols equal
    nmse = err.abs().square().mean().item() / r.h.abs().square().mean().item()
    # 200 x 64 CN errors: relative std 0.9 %; the E|h|² normaliser adds ~2.5 %: allow 12 %
    assert nmse == pytest.approx(no, rel=0.12)
    assert torch.allclose(out.err_var, torch.full_like(out.err_var, no))  # N0/|p|², |p| = 1
    assert torch.equal(out.h_hat[:, :, 0], out.h_hat[:, :, 16])  # nearest-neighbour hold


@pytest.mark.parametrize("kind,kw", [("ofdm", {}), ("tdl", {"tdl_model": "A", "delay_spread": 300e-9})])
def test_lmmse_mse_matches_trace_formula_and_beats_ls(kind, kw):
    no = 0.1
    link, r, out = _run("lmmse", no, kind=kind, **kw)
    mse = (out.h_hat - r.h)[:, 0, 0].abs().square().mean().item()
    cov = link.cov_freq
    m = cov.shape[0]
    theory = (cov - cov @ torch.linalg.solve(cov + no * torch.eye(m, dtype=cov.dtype), cov)).diagonal().real.mean()
    assert out.err_var[0, 0, 0].mean().item() == pytest.approx(theory.item(), rel=1e-6)
    assert mse == pytest.approx(theory.item(), rel=0.1)
    assert mse < 0.5 * no  # well below LS (NMSE = N0)


def test_lmmse_eig_and_cholesky_paths_agree():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 3, generator=g, dtype=torch.float64)
    cov = (a @ a.T).to(torch.complex128) / 3  # rank 3, like a 3-tap PDP
    h = torch.complex(torch.randn(5, 16, generator=g, dtype=torch.float64),
                      torch.randn(5, 16, generator=g, dtype=torch.float64))
    s2 = torch.tensor([0.01, 0.1, 1.0, 0.3, 2.0], dtype=torch.float64)
    h1, m1 = lmmse_smooth(h, s2[:, None].expand(5, 16), cov)
    lam, u = torch.linalg.eigh(cov)
    h2, m2 = lmmse_smooth_eig(h, s2, lam, u)
    torch.testing.assert_close(h1, h2, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(m1, m2, rtol=1e-9, atol=1e-10)


def test_one_tap_lmmse_matches_sionna_siso():
    g = torch.Generator().manual_seed(2)
    n = 50
    h = torch.complex(torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64))
    y = torch.complex(torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64))
    no, ev = 0.2, torch.rand(n, generator=g, dtype=torch.float64) * 0.1
    y_eq, no_eff, w = equalize(y, h, no, ev, "mmse")
    s = (no + ev).to(torch.complex128).reshape(n, 1, 1)
    x_s, no_s = lmmse_equalizer(y.reshape(n, 1), h.reshape(n, 1, 1), s, precision="double")
    torch.testing.assert_close(y_eq, x_s.reshape(n), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(no_eff, no_s.reshape(n).to(no_eff.dtype), rtol=1e-10, atol=1e-12)
    # SISO: unbiased LMMSE == ZF, both report (N0 + err_var)/|h|²
    y_zf, no_zf, _ = equalize(y, h, no, ev, "zf")
    torch.testing.assert_close(y_zf, y_eq)
    torch.testing.assert_close(no_zf, (no + ev) / h.abs().square())
    # biased filter: error variance 1 - w h
    wb = lmmse_weights(h, no, ev, unbiased=False)
    torch.testing.assert_close(effective_noise(wb, h, no, ev), 1 - (wb * h).real)


def test_no_eff_is_calibrated_with_estimation_error():
    # With LS estimates, |y_eq - x|² / no_eff should be ~ Exp(1) on average (mean ≈ 1) at moderate SNR.
    link = OFDMLink(LinkConfig(kind="ofdm", estimator="lmmse"), 1024, precision="double")
    g = torch.Generator().manual_seed(3)
    r = link.generate(100, g)
    x = torch.complex(torch.randn(100, 1024, generator=g, dtype=torch.float64),
                      torch.randn(100, 1024, generator=g, dtype=torch.float64)) / math.sqrt(2)
    out = link.transmit(x, r, 0.05, g)
    ratio = ((out.y_eq - x).abs().square() / out.no_eff).median().item()
    assert ratio == pytest.approx(math.log(2), rel=0.1)  # median of Exp(1)
