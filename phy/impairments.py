"""Transmitter/receiver impairments and helpers: random symbol interleaving, amplitude clipping."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RandomInterleaver", "clip_amplitude"]


class RandomInterleaver(nn.Module):
    """Random permutation of the last axis, drawn from a ``torch.Generator``.

    A symbol interleaver spreads the symbols of one image over fading blocks / subcarriers, so
    that a deep fade hits scattered symbols instead of one contiguous region. It is a pure
    gather, hence differentiable, and ``deinterleave(interleave(x)) == x`` exactly.

    (Sionna's ``RandomInterleaver`` draws its permutation from its own seed/global state; here
    the permutation must come from the caller's generator and travel in the ``ChannelState``, so
    it is a few lines of torch instead.)

    :param num_symbols: ``N``, length of the permuted axis

    :input x: ``[B, N]`` (any dtype)
    :input perm: ``[N]`` int64 permutation from :meth:`draw`
    :output: ``[B, N]``, ``interleave: out[:, i] = x[:, perm[i]]``

    >>> il = RandomInterleaver(6); g = torch.Generator().manual_seed(0)
    >>> p = il.draw(g); x = torch.arange(6.).reshape(1, 6)
    >>> torch.equal(il.deinterleave(il.interleave(x, p), p), x)
    True
    """

    def __init__(self, num_symbols: int):
        super().__init__()
        if num_symbols < 1:
            raise ValueError(f"num_symbols must be positive; got {num_symbols}")
        self.num_symbols = int(num_symbols)

    def draw(self, generator: torch.Generator, device=None) -> torch.Tensor:
        """A fresh ``[N]`` int64 permutation drawn with ``generator`` (on ``device``)."""
        perm = torch.randperm(self.num_symbols, generator=generator, device=generator.device)
        return perm.to(device) if device is not None else perm

    @staticmethod
    def inverse(perm: torch.Tensor) -> torch.Tensor:
        """The inverse permutation: ``inverse(perm)[perm[i]] = i``."""
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(perm.numel(), device=perm.device)
        return inv

    def interleave(self, x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        self._check(x, perm)
        return x[..., perm.to(x.device)]

    def deinterleave(self, x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        self._check(x, perm)
        return x[..., self.inverse(perm.to(x.device))]

    def _check(self, x, perm):
        if x.shape[-1] != self.num_symbols or perm.numel() != self.num_symbols:
            raise ValueError(
                f"interleaver expects last axis {self.num_symbols}; got x {tuple(x.shape)}, "
                f"perm {tuple(perm.shape)}"
            )


def clip_amplitude(x: torch.Tensor, ratio: float | None, dim: int | tuple = -1) -> torch.Tensor:
    """Clip the amplitude of complex samples at ``ratio`` times their RMS, phase preserved.

    ``x_c = x * min(1, A / |x|)`` with ``A = ratio * sqrt(mean |x|²)`` computed *per example*
    over ``dim`` (all axes but the batch axis are typical for a time-domain OFDM frame). Models a
    peak-limited power amplifier (PAPR clipping). Differentiable almost everywhere (not at
    ``|x| = A``); the threshold itself is part of the graph (it depends on ``x``).

    :param x: ``[B, ...]`` complex
    :param ratio: clipping level relative to the RMS amplitude (> 0); ``None`` returns ``x``
    :param dim: axes over which the RMS is taken
    :return: same shape and dtype as ``x``

    >>> clip_amplitude(torch.tensor([[1 + 0j, 3 + 0j]]), 1.0).abs()
    tensor([[1.0000, 2.2361]])
    """
    if ratio is None:
        return x
    if ratio <= 0:
        raise ValueError(f"clip ratio must be positive; got {ratio}")
    rms = x.abs().square().mean(dim=dim, keepdim=True).sqrt()
    a = ratio * rms
    mag = x.abs()
    # Scale only the samples above the threshold; clamp_min avoids 0/0 where x == 0.
    scale = torch.where(mag > a, a / mag.clamp_min(torch.finfo(mag.dtype).tiny), torch.ones_like(mag))
    return x * scale
