"""AWGN and flat Rayleigh: noise/fading statistics, equalisers, reproducibility."""

import math

import pytest
import torch

from linksim.phy.channels import FlatLink, awgn, complex_normal, rayleigh_block_fading
from linksim.phy.conventions import csnr_db_to_no
from linksim.phy.links import LinkConfig

N = 100_000  # complex samples per statistic: relative std of a variance estimate ~ 1/sqrt(N)


class TestAWGN:
    def test_measured_noise_variance_matches_csnr(self):
        g = torch.Generator().manual_seed(1)
        csnr_db = torch.tensor([-5.0, 3.0, 20.0])
        no = csnr_db_to_no(csnr_db)
        x = torch.zeros(3, N, dtype=torch.complex64)
        y, n = awgn(x, no, g)
        torch.testing.assert_close(y, n)
        # sum |n|^2 / N0 ~ Gamma(N, 1): 5-sigma band on the measured variance (rel. std 1/sqrt(N))
        tol = 5 / math.sqrt(N)
        var = n.abs().square().mean(dim=1)
        assert torch.all((var / no - 1).abs() < tol), var / no
        # N0/2 per real dimension (each: chi-square with N dof, rel. std sqrt(2/N)), uncorrelated
        for part in (n.real, n.imag):
            assert torch.all((part.var(dim=1) / (no / 2) - 1).abs() < 5 * math.sqrt(2 / N))
        corr = (n.real * n.imag).mean(dim=1) / (no / 2)
        assert torch.all(corr.abs() < 5 / math.sqrt(N))

    def test_same_generator_state_same_noise(self):
        x = torch.zeros(2, 16, dtype=torch.complex64)
        a = awgn(x, 0.3, torch.Generator().manual_seed(7))[0]
        b = awgn(x, 0.3, torch.Generator().manual_seed(7))[0]
        c = awgn(x, 0.3, torch.Generator().manual_seed(8))[0]
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_bad_no_shape_or_sign(self):
        with pytest.raises(ValueError, match=r"\[B=2\]"):
            awgn(torch.zeros(2, 4, dtype=torch.complex64), torch.ones(3), torch.Generator())
        with pytest.raises(ValueError, match="non-negative"):
            awgn(torch.zeros(2, 4, dtype=torch.complex64), -0.1, torch.Generator())


class TestRayleigh:
    def test_unit_average_energy_and_circular(self):
        h = complex_normal((4, N), torch.Generator().manual_seed(2))
        p = h.abs().square()
        # |h|^2 ~ Exp(1): mean 1, std 1 -> 5 sigma
        assert abs(p.mean().item() - 1) < 5 / math.sqrt(4 * N)
        assert abs(h.mean().abs().item()) < 5 / math.sqrt(4 * N)
        # P(|h|^2 < 0.1) = 1 - e^{-0.1} (Rayleigh amplitude)
        frac = (p < 0.1).float().mean().item()
        pr = 1 - math.exp(-0.1)
        assert abs(frac - pr) < 5 * math.sqrt(pr * (1 - pr) / (4 * N))

    def test_block_structure(self):
        g = torch.Generator().manual_seed(3)
        h = rayleigh_block_fading(5, 50, 16, g)
        assert h.shape == (5, 50)
        blocks = [h[:, i:i + 16] for i in range(0, 50, 16)]  # last block has 2 symbols
        for b in blocks:
            assert torch.all(b == b[:, :1])
        assert not torch.equal(blocks[0], blocks[1])
        h1 = rayleigh_block_fading(5, 50, None, g)
        assert torch.all(h1 == h1[:, :1]) and h1[:, 0].real.unique().numel() == 5


class TestFlatLink:
    @pytest.mark.parametrize("equalizer", ["zf", "mmse"])
    def test_equaliser_and_no_eff(self, equalizer):
        cfg = LinkConfig(kind="rayleigh", coherence_symbols=4, equalizer=equalizer)
        link = FlatLink(cfg, 32)
        g = torch.Generator().manual_seed(4)
        r = link.generate(3, g)
        x = complex_normal((3, 32), g)
        out = link.transmit(x, r, torch.zeros(3), g)
        torch.testing.assert_close(out.y_eq, x)  # noise-free: unbiased equaliser recovers x
        no = torch.tensor([0.1, 0.2, 0.5])
        out = link.transmit(x, r, no, g)
        torch.testing.assert_close(out.no_eff, no[:, None] / r.h.abs().square())
        assert out.y.shape == (3, 32) and out.err_var is None
        torch.testing.assert_close(out.h_hat, r.h)

    def test_mmse_equals_zf_with_perfect_csi(self):
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        zf = FlatLink(LinkConfig(kind="rayleigh", equalizer="zf"), 16)
        mmse = FlatLink(LinkConfig(kind="rayleigh", equalizer="mmse"), 16)
        x = torch.ones(2, 16, dtype=torch.complex64)
        a = zf.transmit(x, zf.generate(2, g1), 0.3, g1)
        b = mmse.transmit(x, mmse.generate(2, g2), 0.3, g2)
        torch.testing.assert_close(a.y_eq, b.y_eq, rtol=1e-5, atol=1e-5)

    def test_awgn_kind_has_unit_channel(self):
        link = FlatLink(LinkConfig(kind="awgn"), 8)
        r = link.generate(2, torch.Generator())
        assert torch.equal(r.h, torch.ones(2, 8, dtype=torch.complex64))
        assert link.grid().overhead == 0.0

    def test_wrong_kind_and_shape(self):
        with pytest.raises(ValueError, match="FlatLink handles"):
            FlatLink(LinkConfig(kind="ofdm"), 8)
        link = FlatLink(LinkConfig(), 8)
        g = torch.Generator()
        with pytest.raises(ValueError, match=r"\[B, 8\]"):
            link.transmit(torch.zeros(2, 9, dtype=torch.complex64), link.generate(2, g), 0.1, g)
