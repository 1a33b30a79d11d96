"""Statistics of the multipath models against their definitions (fixed seeds, stated tolerances)."""

import math

import pytest
import torch

from linksim.phy.multipath import ExpDecayPDP, TDLProfile, frequency_covariance, frequency_response, pdp

N_DRAWS = 20000


def test_pdp_shape_and_decay():
    p = pdp(8, 4.0)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(p[1:] / p[:-1], torch.full((7,), math.exp(-1 / 4.0), dtype=torch.float64))
    with pytest.raises(ValueError):
        pdp(0, 4.0)
    with pytest.raises(ValueError):
        pdp(4, 0.0)


def test_exp_pdp_tap_statistics():
    model = ExpDecayPDP(8, 4.0, bandwidth=64 * 15e3)
    a, tau = model(N_DRAWS, 3, None, generator=torch.Generator().manual_seed(0))
    assert a.shape == (N_DRAWS, 1, 1, 1, 1, 8, 3) and tau.shape == (N_DRAWS, 1, 1, 8)
    assert torch.equal(a[..., 0], a[..., 2])  # static over the frame
    torch.testing.assert_close(tau[0, 0, 0], torch.arange(8.0) / (64 * 15e3))  # integer samples
    h = a[:, 0, 0, 0, 0, :, 0].to(torch.complex128)
    p = pdp(8, 4.0)
    # Mean of n exponential variables: relative std 1/sqrt(n) = 0.7 %; allow 4 sigma.
    torch.testing.assert_close(h.abs().square().mean(0), p, rtol=4 / math.sqrt(N_DRAWS), atol=0)
    # Variance p_l/2 per real component: relative std sqrt(2/n) = 1 %; allow 4 sigma.
    for part in (h.real, h.imag):
        torch.testing.assert_close(part.var(0), p / 2, rtol=4 * math.sqrt(2 / N_DRAWS), atol=0)
    # Total energy: Var(Σ|h_l|²) = Σ p_l² for independent CN taps.
    tot = h.abs().square().sum(1)
    assert abs(tot.mean().item() - 1.0) < 4 * math.sqrt((p ** 2).sum().item() / N_DRAWS)
    # Circular, zero mean: |E h| ~ sqrt(p/n)
    assert (h.mean(0).abs() < 4 * (p / N_DRAWS).sqrt()).all()


def test_exp_pdp_uses_only_the_given_generator():
    model = ExpDecayPDP(4, 2.0, bandwidth=1e6)
    state = torch.random.get_rng_state()
    a1, _ = model(5, generator=torch.Generator().manual_seed(7))
    a2, _ = model(5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a1, a2)
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError):
        model(5)


@pytest.mark.parametrize("name", ["A", "B", "C", "D", "E"])
def test_tdl_energy_normalised_on_average(name):
    n = 4000
    model = TDLProfile(name, 100e-9)
    a, tau = model(n, 2, None, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[..., 0], a[..., 1])
    h = a[:, 0, 0, 0, 0, :, 0].to(torch.complex128)
    tot = h.abs().square().sum(1)
    # E[Σ|h|²] = 1 across draws (not per example: the spread must stay).
    assert abs(tot.mean().item() - 1.0) < 0.05
    if name in ("A", "B", "C"):  # NLoS: Rayleigh taps, so the total energy fluctuates
        assert tot.std().item() > 0.2
    torch.testing.assert_close(h.abs().square().mean(0), model.powers.to(torch.float64), rtol=0.1, atol=2e-3)


def test_tdl_needs_generator_and_is_reproducible():
    model = TDLProfile("C", 300e-9)
    with pytest.raises(ValueError):
        model(2)
    a1, _ = model(3, generator=torch.Generator().manual_seed(3))
    a2, _ = model(3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)


def test_frequency_covariance_matches_draws():
    m, scs = 32, 15e3
    model = ExpDecayPDP(6, 3.0, bandwidth=m * scs, precision="double")
    a, tau = model(N_DRAWS, generator=torch.Generator().manual_seed(2))
    h = frequency_response(a, tau, m, scs)
    emp = (h[:, :, None] * h[:, None, :].conj()).mean(0)
    r = frequency_covariance(model.powers, model.delays, m, scs)
    assert torch.allclose(r.diagonal().real, torch.ones(m, dtype=torch.float64))
    # entries have std <= 1/sqrt(n) = 0.007
    assert (emp - r).abs().max().item() < 0.04
    # E[|H_k|^2] = Σ p_l = 1 on every subcarrier
    assert abs(h.abs().square().mean().item() - 1.0) < 0.02
