"""Entropy models of the LRISC hyperprior in plain torch: a factorized density for the side latent
``z`` and a Gaussian conditional for the main latent ``y``.

Written here rather than imported from CompressAI: CompressAI pins ``numpy < 2``, which breaks
Sionna 2.x (the physical layer). Only the *likelihood* side is needed (LRISC never entropy-codes a
bit stream: ``−log2 p`` only decides how many channel symbols each latent group gets), so the two
models are ~100 lines without the range coder.

Both return, for a latent tensor, the probability mass of its quantised value:
``p(ŷ) = P(ŷ − ½ < Y < ŷ + ½) = c(ŷ + ½) − c(ŷ − ½)`` with the model's CDF ``c``. In training
(``"noise"``) the rounding is replaced by additive uniform noise ``U(−½, ½)`` (Ballé et al. 2017):
rounding has zero gradient almost everywhere, and the noisy latent's density is exactly the
quantised latent's mass smoothed by the box, so ``−log2 p`` of the noisy latent is an unbiased
differentiable proxy of the rate. At test time (``"round"``) the latent is rounded and the mass is
that of the discrete symbol.

* :class:`FactorizedPrior` — Ballé et al., "Variational image compression with a scale
  hyperprior" (ICLR 2018), appendix 6.1: per channel, a monotone CDF
  ``c(x) = sigmoid(f_K ∘ … ∘ f_1(x))`` with ``f_k(x) = h_k(H_k x + b_k)``,
  ``h_k(x) = x + a_k ⊙ tanh(x)`` (``H_k = softplus(·) > 0``, ``a_k = tanh(·) > −1`` keep it
  monotone). With no hidden layers it is the logistic CDF ``sigmoid(s·x + b)``.
* :class:`GaussianConditional` — ``Y ~ N(μ, σ²)`` per element with ``σ`` from the hyper decoder:
  ``p = Φ((½ − |ŷ−μ|)/σ) − Φ((−½ − |ŷ−μ|)/σ)`` (the absolute value evaluates the mass on the
  far-from-mean side of the symmetric CDF, where the difference does not cancel in float32).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["quantize", "FactorizedPrior", "GaussianConditional", "bits", "LIKELIHOOD_BOUND", "SCALE_BOUND"]

#: smallest likelihood (caps −log2 p at ~30 bits per element: an outlier must not dominate the rate)
LIKELIHOOD_BOUND = 1e-9
#: smallest σ of the Gaussian conditional (CompressAI's default 0.11: below it the mass of 0 is ~1)
SCALE_BOUND = 0.11


def quantize(x: torch.Tensor, mode: str, generator: torch.Generator | None = None,
             means: torch.Tensor | None = None) -> torch.Tensor:
    """``"noise"``: ``x + U(−½, ½)`` (training); ``"round"``: ``round(x − μ) + μ`` (test).

    :param means: ``μ`` of a conditional model (rounding around the mean), ``None``: 0
    :param generator: draws the uniform noise (on ``x``'s device)
    """
    if mode == "noise":
        return x + torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 0.5
    if mode == "round":
        m = means if means is not None else 0.0
        return torch.round(x - m) + m
    raise ValueError(f"quantize mode must be 'noise' or 'round'; got {mode!r}")


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """``−log2 p`` per element (same shape as ``likelihoods``)."""
    return -torch.log2(likelihoods)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


class GaussianConditional(nn.Module):
    """Likelihood of a quantised latent under ``N(μ, σ²)`` per element (module notes).

    :input y_hat: ``[B, C, H, W]`` the quantised (or noisy) latent
    :input scales: ``σ`` like ``y_hat`` (clamped below at :data:`SCALE_BOUND`)
    :input means: ``μ`` like ``y_hat`` or ``None`` (zero mean)
    :output: likelihoods like ``y_hat``, in ``[LIKELIHOOD_BOUND, 1]``

    >>> GaussianConditional()(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)).shape
    torch.Size([1, 1, 1, 1])
    """

    def forward(self, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None) -> torch.Tensor:
        d = (y_hat - means) if means is not None else y_hat
        d = d.abs()
        s = scales.clamp_min(SCALE_BOUND)
        p = _std_normal_cdf((0.5 - d) / s) - _std_normal_cdf((-0.5 - d) / s)
        return p.clamp_min(LIKELIHOOD_BOUND)


class FactorizedPrior(nn.Module):
    """Non-parametric factorized density per channel (Ballé 2018, appendix 6.1; module notes).

    :param channels: ``C`` (one univariate density per channel, shared over space)
    :param filters: widths of the hidden layers of the CDF network (``()``: a logistic CDF)
    :param init_scale: initial width of the densities (the latent's expected range)

    :input z_hat: ``[B, C, H, W]`` the quantised (or noisy) side latent
    :output: likelihoods like ``z_hat``, in ``[LIKELIHOOD_BOUND, 1]``

    Parameters ``matrices[k]`` ``[C, d_{k+1}, d_k]``, ``biases[k]`` ``[C, d_{k+1}, 1]``, ``factors[k]``
    ``[C, d_{k+1}, 1]`` (all but the last layer) — the layout of the paper's appendix.

    >>> FactorizedPrior(4)(torch.zeros(2, 4, 3, 3)).shape
    torch.Size([2, 4, 3, 3])
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.channels = int(channels)
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            # softplus(init) = 1 / (scale * d_k): the composed CDF starts with width ~init_scale
            init = math.log(math.expm1(1.0 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``f_K ∘ … ∘ f_1(x)`` for ``x`` ``[C, 1, N]`` -> ``[C, 1, N]`` (the CDF is its sigmoid)."""
        for k, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if k < len(self.factors):
                x = x + torch.tanh(self.factors[k]) * torch.tanh(x)
        return x

    def forward(self, z_hat: torch.Tensor) -> torch.Tensor:
        if z_hat.dim() != 4 or z_hat.shape[1] != self.channels:
            raise ValueError(f"z_hat must be [B, {self.channels}, H, W]; got {tuple(z_hat.shape)}")
        b, c, h, w = z_hat.shape
        v = z_hat.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        # sigmoid(u) - sigmoid(l) evaluated on the side of the median where it does not cancel:
        # flip both logits' sign where their sum is positive (the CDF's upper tail)
        sign = -torch.sign(lower + upper).detach()
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return p.clamp_min(LIKELIHOOD_BOUND).reshape(c, b, h, w).permute(1, 0, 2, 3)
