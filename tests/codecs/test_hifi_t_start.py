"""HiFi-DiffCom's start step at its edges (issue 12 item 9: mutation testing of the t_start
computation): the CBR must be positive, the start saturates at T−1 (channel worth nothing) and at 0
(channel worth more than the cleanest step), κ scales the DSNR, and the start/step scales keep the
schedule inside [0, T−1] with at least one step. Reference numbers from the formula of the paper,
``t = #{t : log10(ᾱ_t/(1−ᾱ_t)) >= κ·ρ·log10(1+snr)}``, counted here by hand."""

from __future__ import annotations

import math

import pytest
import torch

from linksim.codecs.diffusion.hifi import HiFiDiffCom, t_start
from linksim.codecs.diffusion.schedules import Schedule, linear_betas

AC = Schedule(linear_betas(1000)).alphas_cumprod


def GaussianPrior():
    """All HiFi-DiffCom's schedule needs of a prior: its ᾱ_t (kept light: no network)."""
    from types import SimpleNamespace

    return SimpleNamespace(alphas_cumprod=AC)


def test_the_test_vector():
    """1/48 at -5...20 dB (the vector of test_diffusion_receivers), and the actual CBR enters."""
    assert [t_start(c, "1/48", AC) for c in (-5, 0, 1, 5, 10, 15, 20)] == [256, 252, 251, 245, 235, 225, 215]
    assert t_start(10, "1/24", AC) < t_start(10, "1/48", AC)


def _count(csnr_db, rho, kappa=5.0, ac=AC):
    """The paper's start, counted: the number of steps whose logSNR is at least the DSNR."""
    ac = torch.as_tensor(ac, dtype=torch.float64)
    log_snr = torch.log10(ac / (1 - ac))
    return min(int((log_snr >= kappa * rho * math.log10(1 + 10 ** (csnr_db / 10))).sum()), len(ac) - 1)


@pytest.mark.parametrize("csnr_db,cbr", [(0.0, "1/48"), (7.0, 1 / 24), (13.0, 0.1), (-3.0, 1 / 96)])
def test_t_start_is_the_counted_step(csnr_db, cbr):
    from fractions import Fraction

    assert t_start(csnr_db, cbr, AC) == _count(csnr_db, float(Fraction(cbr)) if isinstance(cbr, str) else cbr)


def test_kappa_scales_the_dsnr():
    assert t_start(10.0, "1/48", AC, kappa=2.5) == _count(10.0, 1 / 48, kappa=2.5)
    assert t_start(10.0, "1/48", AC, kappa=2.5) == t_start(10.0, "1/96", AC)  # κρ is what counts
    assert t_start(10.0, "1/48", AC) == _count(10.0, 1 / 48)  # default κ = 5 (the paper's)


def test_t_start_saturates_at_both_ends():
    # a channel worth nothing has DSNR ~ 0: the start is where logSNR crosses 0 (259 here), and
    # on a schedule whose every step has logSNR > 0 that is past the end, so clamped to T−1
    assert t_start(-80.0, "1/48", AC) == _count(-80.0, 1 / 48) == 259
    short = torch.tensor([0.999, 0.99, 0.95, 0.9, 0.8], dtype=torch.float64)
    assert t_start(-80.0, "1/48", short) == 4 and t_start(-80.0, "1/48", short.numpy()) == 4
    assert t_start(200.0, 1.0, AC) == 0  # a channel worth more than the cleanest step


@pytest.mark.parametrize("cbr", [0, 0.0, "0/1", -1 / 48])
def test_t_start_needs_a_positive_cbr(cbr):
    with pytest.raises(ValueError, match="cbr must be > 0"):
        t_start(10.0, cbr, AC)


def test_start_and_step_scales_stay_in_the_schedule():
    prior = GaussianPrior()
    r = HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), start_scale=10.0)
    assert r.t_adaptive == 235 and r.t_start == 999 and r.timesteps()[0] == 999  # clamped to T−1
    r = HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), step_scale=1e-6)
    assert r.timesteps() == [235]  # at least one step
    r = HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), step_scale=1.0)
    assert r.timesteps() == list(range(235, -1, -1))
    assert (r.cbr, r.kappa, r.start_scale, r.step_scale) == ("1/48", 5.0, 1.0, 1.0)
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="step_scale must be in"):
            HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), step_scale=bad)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="start_scale must be > 0"):
            HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), start_scale=bad)
    assert HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), kappa=2.5).t_adaptive == _count(10.0, 1 / 48, 2.5)


def test_published_defaults():
    """HiFi-DiffCom's published step sizes: ζ = 0.25, γ = 0.25, lr = 1, κ = 5 (the paper's)."""
    r = HiFiDiffCom(GaussianPrior(), None, 10.0, "1/48", (4, 4))
    assert (r.zeta, r.gamma, r.lr, r.kappa) == (0.25, 0.25, 1.0, 5.0)


@pytest.mark.parametrize("step_scale,nfe", [(0.999, 236), (0.45, 106), (0.1, 24), (0.004, 1)])
def test_step_scale_takes_that_fraction_of_the_start_plus_one_steps(step_scale, nfe):
    """NFE = round(step_scale · (t_start + 1)) at t_start 235 (10 dB, 1/48), at least 1."""
    r = HiFiDiffCom(GaussianPrior(), None, 10.0, "1/48", (4, 4), step_scale=step_scale)
    steps = r.timesteps()
    assert len(steps) == nfe and steps[0] == 235 and steps[-1] == (0 if nfe > 1 else 235)


def test_receiver_options_are_keyword_only():
    prior = GaussianPrior()
    r = HiFiDiffCom(prior=prior, jscc=None, csnr_db=10.0, cbr="1/48", image_shape=(4, 4), gamma=0.5)
    assert r.gamma == 0.5 and r.t_adaptive == 235
    with pytest.raises(TypeError):
        HiFiDiffCom(prior, None, 10.0, "1/48", (4, 4), 0.5)  # ζ passed by position


def test_start_scale_multiplies_the_adaptive_start():
    """The paper's N: t_start' = int(t_start · N) (235 · 0.5 = 117.5 -> 117)."""
    assert HiFiDiffCom(GaussianPrior(), None, 10.0, "1/48", (4, 4), start_scale=0.5).t_start == 117
    assert HiFiDiffCom(GaussianPrior(), None, 10.0, "1/48", (4, 4), start_scale=2.0).t_start == 470
