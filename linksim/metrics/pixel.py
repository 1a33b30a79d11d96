"""Pixel metrics: PSNR and MS-SSIM (torchmetrics), with MS-SSIM's behaviour on small images stated.

MS-SSIM [Wang, Simoncelli, Bovik 2003] with its standard parameters (5 scales, 11-px Gaussian window
sigma 1.5, betas 0.0448/0.2856/0.3001/0.2363/0.1333) needs images larger than 160 px: the window must
still fit the coarsest scale (torchmetrics requires ``H // 16 > 10``). The embedded images are 32–64
px, so :func:`ms_ssim_scales` picks the largest number of scales ``s`` that fits (the same
torchmetrics condition, ``H // (s-1)^2 > 10``) and uses the first ``s`` standard betas renormalised to
sum to 1. What is computed at which size:

============  ======  =======================================================
short side    scales  betas
============  ======  =======================================================
>= 176 px     5       standard (the published MS-SSIM)
44 – 175 px   3 or 4  first 3 (4 from 99 px) standard betas, renormalised (64 px -> 3)
22 – 43 px    2       (0.0448, 0.2856) renormalised (32 px -> 2)
11 – 21 px    1       single-scale SSIM (11-px window)
============  ======  =======================================================

:attr:`MSSSIM.source` and :func:`ms_ssim_variant` state the variant so that reports print it next to
the numbers. The value stays in ``ms_ssim``: it *is* a multi-scale SSIM, with fewer scales.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
)

from linksim.metrics.base import PerImageMetric

#: the published MS-SSIM weights, finest to coarsest scale
STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
KERNEL_SIZE = 11


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """PSNR [dB] per image with data range 1.

    :input x, y: [B, 3, H, W] float in [0, 1]
    :output psnr: [B] = 10 log10(1 / MSE) over all pixels and channels of each image (inf if equal)
    """
    return peak_signal_noise_ratio(y, x, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ms_ssim_scales(height: int, width: int, kernel_size: int = KERNEL_SIZE) -> int:
    """Largest number of scales (1–5) whose coarsest scale still holds the window.

    :raises ValueError: the image is smaller than the window
    """
    side = min(height, width)
    for s in range(len(STANDARD_BETAS), 1, -1):
        # torchmetrics' own size condition, and the window fitting the coarsest scale (side / 2^(s-1))
        if side // (s - 1) ** 2 > kernel_size - 1 and side >= kernel_size * 2 ** (s - 1):
            return s
    if side >= kernel_size:
        return 1
    raise ValueError(f"MS-SSIM needs images of at least {kernel_size} px; got {height}x{width}")


def ms_ssim_betas(num_scales: int) -> tuple[float, ...]:
    """The first ``num_scales`` standard betas, renormalised to sum to 1 (standard for 5)."""
    b = STANDARD_BETAS[:num_scales]
    if num_scales == len(STANDARD_BETAS):
        return b
    total = sum(b)
    return tuple(v / total for v in b)


def ms_ssim_variant(height: int, width: int) -> str:
    """One line saying what :func:`ms_ssim` computes at this image size."""
    s = ms_ssim_scales(height, width)
    if s == len(STANDARD_BETAS):
        return "MS-SSIM, standard (5 scales, 11-px Gaussian window, published betas)"
    if s == 1:
        return f"SSIM (single scale, 11-px Gaussian window): {height}x{width} is too small for MS-SSIM"
    return (
        f"MS-SSIM with {s} scales (11-px Gaussian window; first {s} published betas renormalised) "
        f"because {height}x{width} < 176 px"
    )


def ms_ssim(x: Tensor, y: Tensor) -> Tensor:
    """MS-SSIM per image, data range 1, scales chosen by :func:`ms_ssim_scales`.

    :input x, y: [B, 3, H, W] float in [0, 1]
    :output ms_ssim: [B] in [0, 1] (1 for identical images)

    Negative contrast-structure terms at coarse scales are clipped to 0 (torchmetrics'
    ``normalize="relu"``) so that heavily distorted images give a real number instead of NaN.
    """
    s = ms_ssim_scales(x.shape[-2], x.shape[-1])
    return multiscale_structural_similarity_index_measure(
        y,
        x,
        data_range=1.0,
        kernel_size=KERNEL_SIZE,
        sigma=1.5,
        betas=ms_ssim_betas(s),
        reduction="none",
        normalize="relu",
    )


class PSNR(PerImageMetric):
    """PSNR [dB], data range 1 (see :func:`psnr`)."""

    name = "psnr"
    source = "torchmetrics peak_signal_noise_ratio, data range 1, per image over RGB"

    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return psnr(x, y)


class MSSSIM(PerImageMetric):
    """MS-SSIM (see :func:`ms_ssim`; fewer scales below 176 px, stated in :attr:`variants`)."""

    name = "ms_ssim"
    source = "torchmetrics multiscale_structural_similarity_index_measure; scales by image size"

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__(device)
        #: image size (H, W) -> variant description, for every size seen (for run.json / reports)
        self.variants: dict[tuple[int, int], str] = {}

    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:
        hw = (x.shape[-2], x.shape[-1])
        if hw not in self.variants:
            self.variants[hw] = ms_ssim_variant(*hw)
        return ms_ssim(x, y)

    def describe(self) -> str:
        sizes = "; ".join(f"{h}x{w}: {v}" for (h, w), v in sorted(self.variants.items()))
        return super().describe() + (f" [{sizes}]" if sizes else "")
