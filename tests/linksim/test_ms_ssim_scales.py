"""MS-SSIM's scale selection at every boundary (issue 12 item 9: mutation testing of the scale
selection). The boundaries follow from the two conditions in ``linksim.metrics.pixel``'s module
notes, worked out by hand: the 11-px window fits the coarsest of ``s`` scales (side ≥ 11·2^(s−1):
22, 44, 88, 176) and torchmetrics accepts the size (side // (s−1)² > 10: 11, 44, 99, 176), so
2 scales from 22 px, 3 from 44, 4 from 99, 5 from 176; 1 (plain SSIM) from 11 px; the shorter side
decides."""

from __future__ import annotations

import math

import pytest
import torch

from linksim.metrics.pixel import STANDARD_BETAS, ms_ssim, ms_ssim_betas, ms_ssim_scales, ms_ssim_variant


@pytest.mark.parametrize("side,scales", [(11, 1), (21, 1), (22, 2), (43, 2), (44, 3), (88, 3), (89, 3), (90, 3),
                                         (98, 3), (99, 4),
                                         (175, 4), (176, 5), (1000, 5)])
def test_boundaries(side, scales):
    assert ms_ssim_scales(side, side) == scales


def test_shorter_side_decides_and_too_small_raises():
    assert ms_ssim_scales(44, 500) == ms_ssim_scales(500, 44) == 3
    for h, w in ((10, 10), (10, 300), (300, 10)):
        with pytest.raises(ValueError, match=r"at least 11 px; got"):
            ms_ssim_scales(h, w)


def test_betas_renormalised_by_hand():
    b = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # published
    assert ms_ssim_betas(5) == STANDARD_BETAS == b
    for s in (1, 2, 3, 4):
        want = tuple(v / sum(b[:s]) for v in b[:s])
        assert all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(ms_ssim_betas(s), want))
        assert len(ms_ssim_betas(s)) == s
    assert ms_ssim_betas(1) == (1.0,)


def test_variant_lines():
    assert ms_ssim_variant(256, 256).startswith("MS-SSIM, standard (5 scales")
    assert ms_ssim_variant(16, 16).startswith("SSIM (single scale")
    assert "MS-SSIM with 3 scales" in ms_ssim_variant(64, 64) and "64x64 < 176 px" in ms_ssim_variant(64, 64)


def test_heavy_distortion_stays_finite_and_orders():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g)
    worse = torch.rand(2, 3, 64, 64, generator=g)  # unrelated image: negative cs terms, clipped (relu)
    v = ms_ssim(x, worse)
    assert torch.isfinite(v).all() and (v >= 0).all() and (v < 0.2).all()
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2), atol=1e-5, rtol=0)
    assert v.shape == (2,)


@pytest.mark.parametrize("side", [64, 128, 176])
def test_equals_torchmetrics_with_the_betas_written_out(side):
    """The value itself: torchmetrics' MS-SSIM with the scale count and renormalised published
    betas written out here (11-px window, σ 1.5, relu normalisation)."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    b = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)[:{64: 3, 128: 4, 176: 5}[side]]
    g = torch.Generator().manual_seed(side)
    x = torch.rand(2, 3, side, side, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ref = tm(y, x, data_range=1.0, kernel_size=11, sigma=1.5, betas=tuple(v / sum(b) for v in b),
             reduction="none", normalize="relu")
    torch.testing.assert_close(ms_ssim(x, y), ref)


def test_a_wide_image_takes_its_scales_from_its_height():
    """44 x 200 px: the height (44 px) allows 3 scales; the value is torchmetrics' with 3 betas."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    b = (0.0448, 0.2856, 0.3001)
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 3, 44, 200, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ref = tm(y, x, data_range=1.0, kernel_size=11, sigma=1.5, betas=tuple(v / sum(b) for v in b),
             reduction="none", normalize="relu")
    torch.testing.assert_close(ms_ssim(x, y), ref)


def test_single_scale_is_ssim():
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    torch.testing.assert_close(ms_ssim(x, y), ssim(y, x, data_range=1.0, reduction="none"), atol=1e-5, rtol=0)


def test_tall_image_uses_its_width():
    """200 x 64 px: the 64 px width decides (3 scales), as torchmetrics with those 3 betas."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 200, 64, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    b = (0.0448, 0.2856, 0.3001)
    ref = tm(y, x, data_range=1.0, kernel_size=11, sigma=1.5, betas=tuple(v / sum(b) for v in b),
             reduction="none", normalize="relu")
    torch.testing.assert_close(ms_ssim(x, y), ref)
