"""LRISC's entropy models and length allocation against closed forms and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from linksim.codecs.lrisc.allocation import (LengthTable, allocate, calibrate_beta, fit_beta, quantize_lengths,
                                             side_bits, side_symbols)
from linksim.codecs.lrisc.entropy import FactorizedPrior, GaussianConditional, bits, quantize


def _discrete_gaussian_entropy(sigma: float) -> float:
    """``H(round(Y))`` [bits], ``Y ~ N(0, σ²)``, by summing ``−p log2 p`` over the integers."""
    k = np.arange(-int(12 * sigma) - 2, int(12 * sigma) + 3)
    p = stats.norm.cdf((k + 0.5) / sigma) - stats.norm.cdf((k - 0.5) / sigma)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


class TestGaussianConditional:
    def test_likelihood_equals_the_closed_form(self):
        y = torch.tensor([-3.0, -1.0, 0.0, 0.4, 2.0, 7.0, 20.0]).reshape(1, 1, 1, -1)
        mu = torch.tensor([0.0, 0.5, -0.2, 0.4, 1.0, 0.0, 0.0]).reshape(y.shape)
        sigma = torch.tensor([1.0, 2.0, 0.5, 3.0, 0.7, 2.5, 4.0]).reshape(y.shape)
        p = GaussianConditional()(y, sigma, mu).double().flatten().numpy()
        yy, mm, ss = (t.double().flatten().numpy() for t in (y, mu, sigma))
        ref = stats.norm.cdf(yy + 0.5, mm, ss) - stats.norm.cdf(yy - 0.5, mm, ss)
        np.testing.assert_allclose(p, ref, rtol=1e-4, atol=1e-9)

    def test_far_tail_is_not_cancelled(self):
        # 7.5 sigma out: CDF(y+.5) - CDF(y-.5) would be 1 - 1 = 0 in float32; the mass is ~1e-12
        p = GaussianConditional()(torch.full((1, 1, 1, 1), 7.5), torch.ones(1, 1, 1, 1))
        assert float(p) == pytest.approx(1e-9, rel=1e-6)  # the likelihood bound, not 0
        p = GaussianConditional()(torch.full((1, 1, 1, 1), 5.0), torch.ones(1, 1, 1, 1))
        ref = stats.norm.sf(4.5) - stats.norm.sf(5.5)
        assert float(p) == pytest.approx(ref, rel=1e-3)

    @pytest.mark.parametrize("sigma", [0.8, 3.0])
    def test_bits_on_a_batch_match_the_entropy_of_a_gaussian_source(self, sigma):
        g = torch.Generator().manual_seed(0)
        y = torch.randn(1, 1, 1, 200_000, generator=g) * sigma
        y_q = quantize(y, "round")
        est = float(bits(GaussianConditional()(y_q, torch.full_like(y, sigma))).mean())
        assert est == pytest.approx(_discrete_gaussian_entropy(sigma), rel=0.01)

    def test_quantize_modes(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(10_000, generator=g) * 5
        torch.testing.assert_close(quantize(x, "round"), torch.round(x))
        d = quantize(x, "noise", g) - x
        assert float(d.min()) >= -0.5 and float(d.max()) <= 0.5
        assert float(d.var()) == pytest.approx(1 / 12, rel=0.05)  # variance of U(-1/2, 1/2)
        with pytest.raises(ValueError, match="noise' or 'round'"):
            quantize(x, "floor")


class TestFactorizedPrior:
    def test_no_hidden_layers_is_the_logistic_closed_form(self):
        prior = FactorizedPrior(2, filters=())
        scale, loc = torch.tensor([1.7, 0.4]), torch.tensor([0.3, -2.0])
        with torch.no_grad():  # c(x) = sigmoid(softplus(m) x + b) = logistic CDF with s = 1/softplus(m)
            prior.matrices[0].copy_(torch.log(torch.expm1(1 / scale)).reshape(2, 1, 1))
            prior.biases[0].copy_((-loc / scale).reshape(2, 1, 1))
        z = torch.tensor([-4.0, -1.0, 0.0, 1.0, 3.0, 9.0])
        p = prior(torch.stack([z, z]).reshape(1, 2, 1, 6)).detach().double().reshape(2, 6).numpy()
        for c in range(2):
            ref = stats.logistic.cdf(z.numpy() + 0.5, loc[c], scale[c]) - stats.logistic.cdf(z.numpy() - 0.5, loc[c], scale[c])
            np.testing.assert_allclose(p[c], np.maximum(ref, 1e-9), rtol=1e-4)

    def test_cdf_is_monotone_and_masses_sum_to_one(self):
        prior = FactorizedPrior(3)
        with torch.no_grad():
            for f in prior.factors:
                f.uniform_(-3, 3)  # any parameters: tanh(a) > -1 keeps every layer monotone
        z = torch.arange(-200, 201, dtype=torch.float32)
        p = prior(z.reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous())
        torch.testing.assert_close(p.sum(dim=-1).flatten(), torch.ones(3), atol=1e-4, rtol=0)

    def test_trained_on_a_gaussian_source_its_bits_approach_the_entropy(self):
        sigma = 4.0
        g = torch.Generator().manual_seed(1)
        prior = FactorizedPrior(1)
        opt = torch.optim.Adam(prior.parameters(), lr=0.05)
        for _ in range(300):  # the training proxy: uniform noise, -log2 likelihood
            y = torch.randn(1, 1, 1, 2048, generator=g) * sigma
            loss = bits(prior(quantize(y, "noise", g))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        y = torch.round(torch.randn(1, 1, 1, 100_000, generator=g) * sigma)
        est = float(bits(prior(y)).mean().detach())
        h = _discrete_gaussian_entropy(sigma)
        assert h <= est + 0.01 <= h * 1.03 + 0.01  # never below the entropy (up to MC noise), within 3 %


class TestLengthAllocation:
    table = LengthTable((0, 4, 8, 12, 16, 24, 32, 48))

    def test_table_and_side_information(self):
        assert self.table.bits_per_group == 3
        assert side_bits(16, self.table) == 48
        assert side_symbols(16, self.table, 1.0) == 48 and side_symbols(16, self.table, 2.0) == 24
        assert side_symbols(16, LengthTable((0, 1, 2, 3, 4)), 1.5) == math.ceil(16 * 3 / 1.5)
        with pytest.raises(ValueError, match="strictly increasing"):
            LengthTable((0, 4, 4))

    def test_quantizer_picks_the_nearest_allowed_length(self):
        v = torch.tensor([-1.0, 1.9, 2.0, 2.1, 13.9, 14.1, 40.0, 41.0, 100.0])
        got = torch.tensor(self.table.lengths)[quantize_lengths(v, self.table)]
        assert got.tolist() == [0, 0, 0, 4, 12, 16, 32, 48, 48]  # ties (2.0, 40.0: midpoints) go down

    def test_fixed_total_never_exceeds_the_budget_and_nearly_fills_it(self):
        g = torch.Generator().manual_seed(0)
        info = torch.rand(64, 16, generator=g) ** 3 * 400  # skewed bits per group
        lens = torch.tensor(self.table.lengths)
        for budget in (40, 208, 464, 700):
            idx = allocate(info, self.table, "fixed_total", budget)
            total = lens[idx].sum(dim=1)
            assert set(lens[idx].unique().tolist()) <= set(self.table.lengths)
            assert int(total.max()) <= budget
            # maximal: one more step of beta (times 1.05) would push some group over the budget or
            # add a symbol; the total is within the largest table gap of the budget for most images
            assert float((budget - total).float().median()) <= 16
        beta = fit_beta(info[:1], 10**6, self.table)
        assert math.isinf(float(beta))  # everything at the maximum fits

    def test_adaptive_meets_the_budget_on_average(self):
        g = torch.Generator().manual_seed(2)
        pool = torch.rand(20_000, generator=g) ** 2 * 300
        lens = torch.tensor(self.table.lengths, dtype=torch.float64)
        for per_group in (5.0, 13.0, 29.0):
            beta = calibrate_beta(pool, per_group, self.table)
            mean = float(lens[quantize_lengths(pool.double() * beta, self.table)].mean())
            assert per_group - 0.25 <= mean <= per_group + 1e-9
            images = pool.reshape(-1, 16)  # 1250 "images" of 16 groups: the mean per image meets it
            totals = lens[allocate(images, self.table, "adaptive", int(per_group * 16), beta)].sum(dim=1)
            assert float(totals.mean()) == pytest.approx(per_group * 16, abs=0.25 * 16)
            assert float(totals.std()) > 0  # lengths vary per image

    def test_more_information_gets_more_symbols(self):
        info = torch.tensor([[10.0] * 16, [10.0] * 8 + [200.0] * 8])
        for mode, beta in (("fixed_total", None), ("adaptive", 0.1)):
            k = torch.tensor(self.table.lengths)[allocate(info, self.table, mode, 208, beta)]
            if mode == "adaptive":
                assert int(k[1].sum()) > int(k[0].sum())
            assert int(k[1, 8:].min()) > int(k[1, :8].max())  # within an image too
