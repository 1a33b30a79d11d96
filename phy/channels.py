"""Flat channels: AWGN and Rayleigh block fading, and the :class:`FlatLink` that uses them.

Conventions (DESIGN.md §3): symbols have unit average energy, noise is ``CN(0, N0)`` per complex
sample (variance ``N0/2`` per real dimension), fading coefficients ``h ~ CN(0, 1)`` so
``E|h|² = 1`` and the CSNR is the *average* received SNR.

Sionna's ``AWGN`` and ``RayleighBlockFading`` draw from Sionna's own/global RNG; linksim needs
every draw to come from the caller's ``torch.Generator`` (a frozen channel, reproducible sweeps),
so the two draws are written here in torch (a few lines each).
"""

from __future__ import annotations

import math

import torch

from .grid import flat_grid
from .links import ChannelRealization, Link, LinkConfig, LinkOutput, instantaneous_noise
from .validation import check_one_of

__all__ = ["complex_normal", "awgn", "rayleigh_block_fading", "FlatLink"]

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def complex_normal(shape, generator: torch.Generator, dtype=torch.complex64, device=None) -> torch.Tensor:
    """``CN(0, 1)`` samples (variance ½ per real dimension) drawn with ``generator``.

    Drawn on the generator's device, then moved to ``device``.

    :param shape: output shape
    :param dtype: complex64 or complex128
    """
    real = _REAL[dtype]
    z = torch.randn((*shape, 2), generator=generator, dtype=real, device=generator.device)
    z = torch.view_as_complex(z) * math.sqrt(0.5)
    return z.to(device) if device is not None else z


def _as_batch(no, batch_size: int, ref: torch.Tensor) -> torch.Tensor:
    """``no`` (float, 0-d or ``[B]``) -> ``[B]`` real tensor on ``ref``'s device/precision."""
    real = _REAL.get(ref.dtype, ref.dtype)
    no = torch.as_tensor(no, dtype=real, device=ref.device)
    if no.dim() == 0:
        no = no.expand(batch_size)
    if no.shape != (batch_size,):
        raise ValueError(f"no must be a float or a [B={batch_size}] tensor; got shape {tuple(no.shape)}")
    if no.device.type == "cpu" and bool((no < 0).any()):  # no device sync on accelerators
        raise ValueError("noise variance no must be non-negative")
    return no


def awgn(x: torch.Tensor, no, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Add ``CN(0, N0)`` noise: returns ``(x + n, n)``.

    :param x: ``[B, ...]`` complex
    :param no: linear ``N0``: float or ``[B]`` (one value per example)
    :return: ``y`` and the noise ``n``, both shaped like ``x``
    """
    no = _as_batch(no, x.shape[0], x)
    n = complex_normal(x.shape, generator, x.dtype, x.device)
    n = n * no.sqrt().reshape(-1, *([1] * (x.dim() - 1)))
    return x + n, n


def rayleigh_block_fading(
    batch_size: int,
    num_symbols: int,
    coherence_symbols: int | None,
    generator: torch.Generator,
    dtype=torch.complex64,
    device=None,
) -> torch.Tensor:
    """Flat Rayleigh block-fading gains ``h ~ CN(0, 1)``, ``[B, N]``.

    One coefficient per block of ``coherence_symbols`` consecutive symbols (the last block may be
    shorter), independent across blocks and examples; ``None`` = one coefficient per example.
    """
    if coherence_symbols is None or coherence_symbols >= num_symbols:
        coherence_symbols = num_symbols
    if coherence_symbols < 1:
        raise ValueError(f"coherence_symbols must be positive; got {coherence_symbols}")
    num_blocks = -(-num_symbols // coherence_symbols)
    h = complex_normal((batch_size, num_blocks), generator, dtype, device)
    return h.repeat_interleave(coherence_symbols, dim=1)[:, :num_symbols]


class FlatLink(Link):
    """Single-antenna flat channel: ``y = h x + n``, then ZF or (unbiased) MMSE equalisation.

    ``kind="awgn"``: ``h = 1``. ``kind="rayleigh"``: block fading, see :func:`rayleigh_block_fading`.

    **CSI.** Flat links always equalise with the *true* channel (``estimator`` is ignored, the
    realisation reports ``h_hat = h`` and ``err_var = None``): pilot-based estimation is modelled
    by the OFDM links only.

    **Equalisers.** ZF: ``y_eq = y / h``, ``no_eff = N0 / |h|²``. MMSE returns the *unbiased*
    LMMSE estimate (as Sionna's ``LMMSEEqualizer``): ``w = conj(h) / (|h|² + N0)`` followed by the
    bias removal ``1 / (w h)``, so ``y_eq = x + e`` with ``no_eff = N0 / |h|²``. With one antenna
    and perfect CSI the two therefore coincide exactly (the bias-corrected MMSE filter is the ZF
    filter); the option exists so that configurations are interchangeable with OFDM links, where
    estimation error makes them differ. ``no_eff`` is the variance of ``e`` per complex symbol,
    what the LLR demapper expects.

    :param cfg: ``kind`` ``awgn`` or ``rayleigh``; ``coherence_symbols``, ``equalizer`` are used
    :param num_symbols: ``N`` data symbols per example
    :param device: torch device
    :param precision: ``"single"`` (complex64) or ``"double"`` (complex128)

    >>> link = FlatLink(LinkConfig(kind="rayleigh"), 8)
    >>> g = torch.Generator().manual_seed(0); r = link.generate(2, g)
    >>> link.transmit(torch.ones(2, 8, dtype=torch.complex64), r, torch.tensor([0.1, 0.1]), g).y_eq.shape
    torch.Size([2, 8])
    """

    kinds = ("awgn", "rayleigh")

    def __init__(self, cfg: LinkConfig, num_symbols: int, device="cpu", precision: str = "single"):
        super().__init__(cfg, num_symbols, device)
        check_one_of("precision", precision, ("single", "double"))
        self.precision = precision
        self.cdtype = torch.complex64 if precision == "single" else torch.complex128

    #: the flat layout (:func:`linksim.phy.grid.flat_grid`; torch-free, the validator uses it too)
    grid_info = staticmethod(flat_grid)

    def generate(self, batch_size: int, generator: torch.Generator, times=None) -> ChannelRealization:
        """``h`` ``[B, N]`` complex: ones for AWGN, ``CN(0, 1)`` blocks for Rayleigh (static: ``times``
        is not used)."""
        if self.cfg.kind == "awgn":
            h = torch.ones(batch_size, self.num_symbols, dtype=self.cdtype, device=self.device)
        else:
            h = rayleigh_block_fading(batch_size, self.num_symbols, self.cfg.coherence_symbols,
                                      generator, self.cdtype, self.device)
        return ChannelRealization(h=h)

    def _weights(self, h: torch.Tensor, no: torch.Tensor) -> torch.Tensor:
        if self.cfg.equalizer == "zf":
            return 1.0 / h
        w = h.conj() / (h.abs().square() + no[:, None])
        return w / (w * h)  # unbiased: remove the MMSE shrinkage (w h) -> ZF for flat channels

    def transmit(self, x, realization, no, generator) -> LinkOutput:
        """``y = h x + n``, ``n ~ CN(0, N0)``; returns equalised ``y_eq = w y`` and ``no_eff``."""
        if x.shape[1:] != (self.num_symbols,):
            raise ValueError(f"x must be [B, {self.num_symbols}]; got {tuple(x.shape)}")
        h = realization.h
        hx = h * x
        no = instantaneous_noise(_as_batch(no, x.shape[0], hx), hx, self.cfg.snr_reference)
        y, _ = awgn(hx, no, generator)
        w = self._weights(h, no)
        no_eff = no[:, None] * w.abs().square()  # = N0 / |h|² for both equalisers
        return LinkOutput(y_eq=w * y, no_eff=no_eff, h_hat=h, err_var=None, weights=w, y=y, no=no)

    def noise_free(self, x, realization, out, use_true_channel=False) -> torch.Tensor:
        """``w h x`` with the stored weights ``w`` (flat links: ``h_hat`` is the true ``h``)."""
        return out.weights * (self.data_channel(realization, out, use_true_channel) * x)

    def received_data(self, out: LinkOutput) -> torch.Tensor:
        """``y = h x + n`` as received (before the equaliser), ``[B, N]``."""
        return out.y

    def data_channel(self, realization, out, use_true_channel=False) -> torch.Tensor:
        """``h`` ``[B, N]`` (flat links have perfect CSI: ``h_hat`` is the true ``h``)."""
        return realization.h if use_true_channel or out.h_hat is None else out.h_hat
