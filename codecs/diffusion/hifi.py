"""HiFi-DiffCom: DiffCom with an adaptive start from the JSCC decode and a decoder-consistency term.

::

    x_mse = D(Aᵀ(Y_data))                          JSCC decode of the real received signal, [0, 1]
    t_start = t_start(CSNR, ρ, ᾱ)                  first step whose logSNR is below κ·log10((1+snr)^ρ)
    t_start' = int(t_start·N)                      the paper's start scale N (``start_scale``)
    x_{t_start'} = √ᾱ·(2·x_mse − 1) + √(1−ᾱ)·ε
    loss = ζ·‖y − A(x̂0)‖₂ + γ·‖x_mse − D(Aᵀ(A(x̂0)))‖₂          (norms per image, not squared)

``A(x̂0) = Ĥ ⊙ X(x̂0)`` (the noise-free re-simulation on the data REs) and ``Aᵀ`` the receiver
side: the *biased* one-tap MMSE equaliser ``conj(Ĥ)/(|Ĥ|² + N0 + err_var)`` with the link's
estimate and effective noise, then de-interleaving
(:meth:`~linksim.phy.chains.ChannelState.biased_mmse`; identity on AWGN). So the confirming term
sees the channel: ``D(MMSE(Ĥ⊙X̂))`` against ``x_mse = D(MMSE(Y))``, as the reference code. The
measurement term follows ``measurement`` (default ``received``; see
:mod:`~linksim.codecs.diffusion.sampler`).

Steps: consecutive ``t_start' … 0`` (NFE = ``t_start' + 1``); ``step_scale`` < 1 (linksim's speed
option) takes ``round(step_scale·(t_start'+1))`` strided steps over the same range instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from .sampler import DiffusionReceiver, MeasurementContext, spaced_steps

__all__ = ["t_start", "HiFiContext", "HiFiDiffCom"]


@dataclass
class HiFiContext(MeasurementContext):
    """:class:`MeasurementContext` + ``x_mse``: the JSCC decode of the biased-MMSE estimate
    ``[B, 3, H, W]`` in [0, 1] (HiFi's start point and the target of its consistency term)."""

    x_mse: Any = None


def t_start(csnr_db: float, cbr, alphas_cumprod, kappa: float = 5.0) -> int:
    """Adaptive start step of HiFi-DiffCom from the channel SNR and the actual CBR.

    ``snr = 10^(CSNR/10)``; the "diffusion SNR" the JSCC output is worth is
    ``DSNR = κ·log10((1+snr)^ρ)`` (κ scales the capacity ``ρ·log2(1+snr)`` into the schedule's
    log10-SNR units); ``logSNR_t = log10(ᾱ_t/(1−ᾱ_t))`` decreases with ``t``, and
    ``t_start = T − searchsorted(reverse(logSNR), DSNR)`` is the first step whose logSNR lies
    below DSNR.

    :param csnr_db: CSNR [dB]
    :param cbr: ``ρ`` (float, Fraction or ``"a/b"``), the *actual* CBR of the transmission
    :param alphas_cumprod: ``[T]`` ``ᾱ_t`` (tensor or array, decreasing)
    :param kappa: κ (5 in the paper)
    :return: integer step in ``[0, T−1]``

    >>> from linksim.codecs.diffusion.schedules import Schedule, linear_betas
    >>> t_start(10.0, "1/48", Schedule(linear_betas(1000)).alphas_cumprod)
    235
    """
    rho = float(Fraction(cbr)) if isinstance(cbr, str) else float(cbr)
    if not rho > 0:
        raise ValueError(f"cbr must be > 0; got {cbr}")
    ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).cpu().numpy()
    snr = 10.0 ** (float(csnr_db) / 10.0)
    dsnr = kappa * rho * np.log10(1.0 + snr)  # log10((1+snr)^ρ) without overflow
    log_snr = np.log10(ac / (1.0 - ac))
    t = len(ac) - int(np.searchsorted(log_snr[::-1], dsnr))
    return int(min(max(t, 0), len(ac) - 1))


class HiFiDiffCom(DiffusionReceiver):
    """HiFi-DiffCom receiver (ζ=0.25, γ=0.25, lr=1 published).

    :param prior: the image prior (``Prior`` interface, images in ``[-1, 1]``)
    :param jscc: frozen ADJSCC (``encode``/``decode`` differentiable)
    :param csnr_db: nominal CSNR [dB] (AF modules, adaptive start)
    :param cbr: the actual CBR ``ρ`` of the transmission
    :param image_shape: ``(H, W)``
    :param gamma: weight of the decoder-consistency term
    :param kappa: κ of :func:`t_start`
    :param start_scale: the paper's N: start at ``int(t_start·N)`` (1 = the adaptive start)
    :param step_scale: fraction of the ``t_start' + 1`` steps actually taken (strided; 1 = all)
    :param kwargs: :class:`DiffusionReceiver` options (``zeta``, ``lr``, ``autocast``, ...)

    Attributes: ``t_adaptive`` (the formula's start), ``t_start`` (``int(t_adaptive·N)``, where
    sampling starts).
    """

    def __init__(self, prior, jscc, csnr_db: float, cbr, image_shape, *, zeta: float = 0.25,
                 gamma: float = 0.25, lr: float = 1.0, kappa: float = 5.0, start_scale: float = 1.0,
                 step_scale: float = 1.0, **kwargs):
        super().__init__(prior, jscc, csnr_db, image_shape, zeta=zeta, lr=lr, **kwargs)
        if not 0 < step_scale <= 1:
            raise ValueError(f"step_scale must be in (0, 1]; got {step_scale}")
        if not start_scale > 0:
            raise ValueError(f"start_scale must be > 0; got {start_scale}")
        self.gamma = float(gamma)
        self.cbr = cbr
        self.kappa = float(kappa)
        self.start_scale = float(start_scale)
        self.step_scale = float(step_scale)
        self.t_adaptive = t_start(csnr_db, cbr, prior.alphas_cumprod, kappa)
        self.t_start = min(int(self.t_adaptive * self.start_scale), len(self._ac) - 1)

    def timesteps(self) -> list[int]:
        n = max(1, round(self.step_scale * (self.t_start + 1)))
        return spaced_steps(self.t_start, n)

    def _decode(self, y_data, ctx, tx_scale):
        """``D(Aᵀ(y_data))``: biased MMSE + de-interleave, then the JSCC decoder."""
        return self.jscc.decode(ctx.state.biased_mmse(y_data), self.csnr_db, no_eff=ctx.no_eff,
                                image_size=self.image_shape, tx_scale=tx_scale)

    def prepare(self, rx, state) -> HiFiContext:
        ctx = HiFiContext(**vars(super().prepare(rx, state)))
        with torch.no_grad():
            ctx.x_mse = self._decode(state.received(), ctx, ctx.tx_scale).clamp(0, 1)
        return ctx

    def init(self, ctx: MeasurementContext, generator: torch.Generator) -> torch.Tensor:
        x_mse = ctx.x_mse
        a = float(self._ac[self.t_start])
        eps = self._randn(x_mse.shape, generator, x_mse.device)
        return a**0.5 * (2 * x_mse - 1) + (1 - a) ** 0.5 * eps

    def guide(self, x0_hat: torch.Tensor, ctx: MeasurementContext, step: int) -> torch.Tensor:
        tx_scale = ctx.tx_scale
        if getattr(getattr(self.jscc, "config", None), "rescale_received", False):
            # public-layout models decode rescaled symbols: use the normaliser of *this* x̂0
            x_tx, tx_scale = self.jscc.encode((x0_hat + 1) / 2, self.csnr_db, return_scale=True)
        else:
            x_tx = self.encode(x0_hat)
        meas = self.residual_norm(self.simulate(x_tx, ctx), ctx)
        d = self._decode(ctx.state.forward_received(x_tx), ctx, tx_scale)
        cons = (ctx.x_mse - d).flatten(1).square().sum(-1).sqrt()
        return self.zeta * meas + self.gamma * cons
