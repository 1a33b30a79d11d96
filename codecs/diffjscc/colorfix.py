"""Wavelet colour fix: keep the high-frequency detail of a generated image and take its
low-frequency band (colour, illumination) from a reference.

DiffJSCC applies it against the stage-1 JSCC output after sampling (the diffusion model may shift
colours; stage 1 is MSE-trained and colour-faithful). The decomposition is the à-trous ("with
holes") wavelet transform: ``L`` levels of a 3x3 binomial blur ``[1 2 1]ᵀ[1 2 1]/16`` with dilation
``2^i``; the high band is ``x − blur^(L)(x)`` accumulated over levels, the low band what remains.
Written here (a dozen lines of conv2d) because no installed library offers it.

Borders use reflection padding (the reference implementations of StableSR/DiffBIR pad by
replication): with reflection the decomposition is exact for constant offsets *and* for the
Nyquist checkerboard up to the border, which the known-answer test relies on.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["wavelet_decompose", "wavelet_color_fix"]


def _blur(x: torch.Tensor, dilation: int) -> torch.Tensor:
    k1 = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device) / 4
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 3, 3)
    x = F.pad(x, (dilation,) * 4, mode="reflect")
    return F.conv2d(x, kernel, groups=x.shape[1], dilation=dilation)


def wavelet_decompose(x: torch.Tensor, levels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[B, C, H, W]`` -> ``(high, low)`` with ``high + low == x`` exactly.

    :param levels: blur levels (dilations 1, 2, ..., 2^(levels-1)); each needs ``H, W > 2^level``
    """
    high = torch.zeros_like(x)
    low = x
    for i in range(levels):
        blurred = _blur(low, 2**i)
        high = high + (low - blurred)
        low = blurred
    return high, low


def wavelet_color_fix(content: torch.Tensor, reference: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """High band of ``content`` + low band of ``reference``; ``[B, C, H, W]`` both, same range.

    The level count is capped so that the largest dilation fits the image (reflection padding).
    """
    if content.shape != reference.shape:
        raise ValueError(f"content {tuple(content.shape)} and reference {tuple(reference.shape)} differ")
    side = min(content.shape[-2:])
    levels = max(1, min(levels, (side - 1).bit_length() - 1))
    high, _ = wavelet_decompose(content, levels)
    _, low = wavelet_decompose(reference, levels)
    return high + low
