"""Random interleaver and amplitude clipping."""

import pytest
import torch

from linksim.phy.impairments import RandomInterleaver, clip_amplitude


class TestRandomInterleaver:
    def test_round_trip_and_is_a_permutation(self):
        il = RandomInterleaver(100)
        perm = il.draw(torch.Generator().manual_seed(0))
        assert torch.equal(perm.sort().values, torch.arange(100))
        assert not torch.equal(perm, torch.arange(100))
        x = torch.randn(3, 100, dtype=torch.complex64)
        xi = il.interleave(x, perm)
        assert torch.equal(xi[:, 5], x[:, perm[5]])
        assert torch.equal(il.deinterleave(xi, perm), x)
        assert torch.equal(il.interleave(il.deinterleave(x, perm), perm), x)

    def test_seeded(self):
        il = RandomInterleaver(50)
        a = il.draw(torch.Generator().manual_seed(1))
        assert torch.equal(a, il.draw(torch.Generator().manual_seed(1)))
        assert not torch.equal(a, il.draw(torch.Generator().manual_seed(2)))

    def test_gradient_is_the_inverse_permutation(self):
        il = RandomInterleaver(10)
        perm = il.draw(torch.Generator().manual_seed(3))
        x = torch.zeros(1, 10, requires_grad=True)
        w = torch.arange(10.0)
        (il.interleave(x, perm) * w).sum().backward()
        torch.testing.assert_close(x.grad[0], w[il.inverse(perm)])

    def test_shape_check(self):
        with pytest.raises(ValueError, match="last axis 10"):
            RandomInterleaver(10).interleave(torch.zeros(2, 9), torch.arange(10))


class TestClipping:
    def test_peaks_clipped_at_ratio_rms_per_example_phase_kept(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 1000, dtype=torch.complex64, generator=g)
        x[1] *= 10  # a different scale per example: the threshold must follow it
        y = clip_amplitude(x, 1.5)
        rms = x.abs().square().mean(dim=1, keepdim=True).sqrt()
        assert torch.all(y.abs() <= 1.5 * rms * (1 + 1e-6))
        below = x.abs() <= 1.5 * rms
        assert torch.equal(y[below], x[below])
        assert below.float().mean() < 0.95  # some samples were actually clipped
        torch.testing.assert_close(torch.angle(y), torch.angle(x))
        assert clip_amplitude(x, None) is x

    def test_differentiable(self):
        x = torch.tensor([[1.0 + 0j, 3.0 + 0j, 0.5j]], dtype=torch.complex128, requires_grad=True)
        torch.autograd.gradcheck(lambda z: torch.view_as_real(clip_amplitude(z, 1.2)), (x,))

    def test_bad_ratio(self):
        with pytest.raises(ValueError, match="positive"):
            clip_amplitude(torch.ones(1, 2, dtype=torch.complex64), 0.0)
