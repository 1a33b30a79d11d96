"""TDL with mobility (issue 17 item 3): Doppler over the OFDM symbols of a message, and a channel
process that a message samples at its transmission time.

Theory: Sionna's TDL is a sum of ``N`` sinusoids per tap with arrival angles ``α_n = (2πn + θ)/N``
(θ uniform over one sector), so over realisations each angle is uniform on the circle and the
complex tap autocorrelation is exactly Clarke/Jakes', ``E[h(t+τ) h*(t)] = p J0(2π f_D τ)``, for
every non-LoS tap. The tests estimate it over many realisations (fixed seeds) and compare with the
Bessel function computed here by scipy; the tolerance is ~5 standard errors of the estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import j0

from linksim.phy.links import LinkConfig, TransmitTimes, transmit_times
from linksim.phy.multipath import TDLProfile, coherence_time_s, doppler_hz
from linksim.phy.ofdm import OFDMLink

C = 299_792_458.0


def _tap_autocorrelation(a: np.ndarray) -> np.ndarray:
    """``[B, L, T]`` taps -> ``ρ(k) = mean over b, l of h_l(t_k) h_l*(t_0) / E|h_l|²`` ``[T]``."""
    power = np.mean(np.abs(a) ** 2, axis=(0, 2))  # [L]
    return np.mean(a * np.conj(a[..., :1]) / power[None, :, None], axis=(0, 1))


def test_doppler_and_coherence_time_from_speed_and_carrier():
    # f_D = v f_c / c; T_c = 0.423 / f_D (Rappaport eq. 5.40.c)
    assert doppler_hz(30.0, 3.5e9) == pytest.approx(30.0 * 3.5e9 / C, rel=1e-12)
    assert coherence_time_s(30.0, 3.5e9) == pytest.approx(0.423 / (30.0 * 3.5e9 / C), rel=2e-3)
    assert coherence_time_s(0.0, 3.5e9) is None


def test_tap_time_correlation_follows_jakes():
    """TDL-C (no LoS) at 30 m/s, 3.5 GHz: ρ(τ) over τ = 0 .. 2.4/f_D against J0(2π f_D τ)."""
    model = TDLProfile("C", 100e-9, 3.5e9, speed=30.0, precision="double")
    fd = model.doppler_hz
    steps, span = 13, 2.4 / fd
    a, _ = model(1000, steps, (steps - 1) / span, generator=torch.Generator().manual_seed(7))
    rho = _tap_autocorrelation(a[:, 0, 0, 0, 0].numpy())
    tau = np.arange(steps) * span / (steps - 1)
    theory = j0(2 * np.pi * fd * tau)
    # standard error of the estimate: ~1/sqrt(2 x 1000 x 24) = 0.005 per component
    np.testing.assert_allclose(rho.real, theory, atol=0.03)
    np.testing.assert_allclose(rho.imag, 0.0, atol=0.03)
    assert theory.min() < -0.35  # the span reaches the first negative lobe of J0


def test_correlation_at_a_later_transmission_time_follows_jakes():
    """Two samples of one process at t0 and t0 + τ (t0 = 3.7 s, far from 0): E[h(t0+τ)h*(t0)] is
    J0(2π f_D τ) again (the process is stationary), through TDLProfile.sample's time offset."""
    model = TDLProfile("C", 100e-9, 3.5e9, speed=30.0)
    fd = model.doppler_hz
    tau = np.array([0.0, 0.1, 0.25, 0.4, 0.6, 0.9]) / fd
    gens = [torch.Generator().manual_seed(1000 + b) for b in range(400)]
    times = torch.tensor(3.7 + tau, dtype=torch.float64).expand(400, -1)
    a, _ = model.sample(times, gens)
    rho = _tap_autocorrelation(a[:, 0, 0, 0, 0].numpy())
    # standard error ~1/sqrt(2 x 400 x 24) = 0.007
    np.testing.assert_allclose(rho.real, j0(2 * np.pi * fd * tau), atol=0.04)


def test_sample_is_sionnas_own_process():
    """``sample`` at ``t_k = k / fs`` equals Sionna's TDL evaluated at those steps from the same
    generator state; at ``t0 + k/fs`` it equals Sionna's steps ``k0 + k`` when ``t0 = k0/fs``."""
    model = TDLProfile("E", 50e-9, 2.0e9, speed=12.0)  # LoS model: the specular tap too
    fs = 1 / 71.4e-6
    a_ref, tau_ref = model(1, 20, fs, generator=torch.Generator().manual_seed(3))
    t = torch.arange(20, dtype=torch.float64)[None] / fs
    a, tau = model.sample(t, [torch.Generator().manual_seed(3)])
    torch.testing.assert_close(a, a_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(tau, tau_ref)
    a5, _ = model.sample(t[:, :15] + 5 / fs, [torch.Generator().manual_seed(3)])
    torch.testing.assert_close(a5, a_ref[..., 5:], rtol=0, atol=1e-6)


def test_static_tdl_is_unchanged_by_times():
    """speed 0: constant over the OFDM symbols, and the same draw with or without transmit times."""
    cfg = LinkConfig(kind="tdl", cp=4, data_symbols=4, subcarriers=32)
    link = OFDMLink(cfg, 256)
    r1 = link.generate(2, torch.Generator().manual_seed(0))
    with transmit_times(TransmitTimes((0.5, 9.0), (1, 2))):
        r2 = link.generate(2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(r1.h, r2.h)
    assert r1.times is None and bool((r1.h == r1.h[:, :1, :1]).all())


def _moving_link(speed=60.0, estimator="perfect"):
    cfg = LinkConfig(kind="tdl", speed=speed, carrier_frequency=3.5e9, cp=4, data_symbols=8, pilot_symbols=1,
                     subcarriers=32, delay_spread=100e-9, estimator=estimator)
    return OFDMLink(cfg, 2 * 8 * 32, precision="double")  # 2 frames of 9 OFDM symbols


def test_grid_channel_is_the_taps_at_each_ofdm_symbol():
    """h[b, f, s, k] = Σ_l a_l(t_b + (f·S + s)·T_s) exp(-j2π f_k τ_l), f_k = (k - M/2)Δf, with
    T_s = (M + cp)/(M Δf) and the taps taken from the model at those times (computed here)."""
    link = _moving_link()
    ts = (32 + 4) / (32 * 15e3)
    assert link.symbol_duration == pytest.approx(ts)
    times = TransmitTimes((0.0, 0.25), (11, 12))
    real = link.generate(2, torch.Generator().manual_seed(0), times)
    t = torch.tensor([[0.0], [0.25]], dtype=torch.float64) + torch.arange(18, dtype=torch.float64) * ts
    torch.testing.assert_close(real.times, t)
    a, tau = link.channel_model.sample(t, [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)])
    a = a[:, 0, 0, 0, 0].numpy()  # [B, L, T]
    fk = (np.arange(32) - 16) * 15e3
    phase = np.exp(-2j * np.pi * fk[:, None] * tau[0, 0, 0].numpy()[None, :])  # [M, L]
    expected = np.einsum("kl,blt->btk", phase, a).reshape(2, 2, 9, 32)
    np.testing.assert_allclose(real.h.numpy(), expected, atol=1e-9)
    assert float((real.h[:, 0, 0] - real.h[:, 1, 8]).abs().mean()) > 0.1  # it does move


def test_message_channel_follows_its_transmission_time():
    """Same process: a message one OFDM symbol later sees the channel one symbol on; another
    process (another draw) at the same time is a different channel; the clock of the context is
    what generate uses when none is passed."""
    link = _moving_link()
    ts = link.symbol_duration
    g = torch.Generator().manual_seed(0)
    first = link.generate(1, g, TransmitTimes((1.0,), (5,))).h.reshape(1, 18, 32)
    later = link.generate(1, g, TransmitTimes((1.0 + ts,), (5,))).h.reshape(1, 18, 32)
    torch.testing.assert_close(later[:, :-1], first[:, 1:], rtol=0, atol=1e-9)
    other = link.generate(1, g, TransmitTimes((1.0,), (6,))).h.reshape(1, 18, 32)
    assert float((other - first).abs().mean()) > 0.3
    with transmit_times(TransmitTimes((1.0 + ts,), (5,))):
        ctx = link.generate(1, g).h.reshape(1, 18, 32)
    torch.testing.assert_close(ctx, later)
    # a retransmission of example 1 of a batch, one symbol later: the same process, later times
    both = TransmitTimes((0.0, 1.0), (4, 5))
    assert both.select([1], ts) == TransmitTimes((1.0 + ts,), (5,))
    with pytest.raises(ValueError, match="transmit times for 1 examples, but the batch has 2"):
        link.generate(2, g, TransmitTimes((0.0,), (5,)))


def test_estimation_error_grows_with_distance_from_the_pilot_as_jakes_says():
    """LS, nearest-pilot interpolation, almost no noise: the estimate at a symbol d symbols from
    the pilot is the channel d·T_s earlier or later, so E|Ĥ - H|² = 2 (1 - J0(2π f_D d T_s))."""
    link = _moving_link(speed=60.0, estimator="ls")
    fd, ts = doppler_hz(60.0, 3.5e9), link.symbol_duration
    real = link.generate(1500, torch.Generator().manual_seed(2))
    x = torch.zeros(1500, link.num_symbols, dtype=torch.complex128)
    out = link.transmit(x + 1, real, 1e-8, torch.Generator().manual_seed(3))
    pilot = link.pilot_indices[0]
    # per OFDM symbol, relative to this sample's channel power (the draws' Σ|h_l|² is 1 on average)
    err = ((out.h_hat - real.h).abs().square().mean(dim=(0, 1, 3)) / real.h.abs().square().mean()).numpy()
    d = np.abs(np.arange(9) - pilot)
    theory = 2 * (1 - j0(2 * np.pi * fd * d * ts))
    assert err[pilot] < 1e-6
    # the sample mean of |ΔH|² over 1500 draws of 20-sinusoid taps scatters by ~2.5 % (seen over seeds)
    np.testing.assert_allclose(err, theory, rtol=0.08, atol=2e-4)
    assert theory.max() > 0.05  # a measurable loss: 60 m/s, 4 symbols off the pilot
