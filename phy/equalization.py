"""One-tap (per resource element) equalisers for single-antenna OFDM: ZF and LMMSE.

Model per RE: ``y = h x + n`` with ``E|x|² = 1``, ``n ~ CN(0, N0)`` and a channel estimate
``ĥ = h - e`` whose error ``e`` has variance ``err_var``. Treating ``e x`` as extra noise (as
Sionna's equalisers do), the observation is ``y = ĥ x + v`` with ``E|v|² = N0 + err_var``.

Sionna's ``ZFEqualizer``/``LMMSEEqualizer`` solve the MIMO problem per RE through a
``StreamManagement`` and do not expose their filter; linksim must re-apply the *same* filter in a
noise-free, differentiable forward operator, so the SISO formulas (one complex multiply per RE)
are written here. They agree with :func:`sionna.phy.mimo.lmmse_equalizer` for 1x1 (tested).

All functions are pure and broadcast over any leading shape; ``no`` must broadcast against ``h``.
"""

from __future__ import annotations

import torch

__all__ = ["zf_weights", "lmmse_weights", "equalize", "effective_noise"]


def _noise(no, err_var, h):
    return no if err_var is None else no + err_var


def zf_weights(h_hat: torch.Tensor) -> torch.Tensor:
    """``w = 1 / ĥ`` (zero forcing), same shape as ``h_hat``."""
    return 1.0 / h_hat


def lmmse_weights(h_hat: torch.Tensor, no, err_var: torch.Tensor | None = None,
                  unbiased: bool = True) -> torch.Tensor:
    """LMMSE one-tap filter ``w = conj(ĥ) / (|ĥ|² + N0 + err_var)``.

    With ``unbiased=True`` (default, Sionna's convention and what an LLR demapper expects) the
    MMSE shrinkage ``g = w ĥ`` is divided out, ``w / g``; for one antenna that is exactly
    ``1/ĥ``: unbiased LMMSE and ZF coincide per RE, only the reported noise (which includes
    ``err_var`` for both) differs from a naive ZF. ``unbiased=False`` keeps the biased filter
    (lower MSE, ``y_eq = g x + ...``).

    :param h_hat: complex channel estimate
    :param no: noise variance ``N0`` (broadcastable float tensor)
    :param err_var: estimation error variance (real, like ``h_hat``) or ``None``
    :return: complex weights, shape of ``h_hat``
    """
    s = _noise(no, err_var, h_hat)
    w = h_hat.conj() / (h_hat.abs().square() + s)
    if unbiased:
        w = w / (w * h_hat)
    return w


def effective_noise(w: torch.Tensor, h_hat: torch.Tensor, no, err_var=None) -> torch.Tensor:
    """Variance of ``w y - x`` per RE under the model above, for the *unbiased* or ZF filter.

    ``|w|² (N0 + err_var)`` when ``w ĥ = 1``; for a biased filter the error is
    ``(w ĥ - 1) x + w v`` and its variance ``|w ĥ - 1|² + |w|² (N0 + err_var)`` is returned
    (which equals ``1 - w ĥ`` for the exact biased LMMSE filter).
    """
    s = _noise(no, err_var, h_hat)
    return (w * h_hat - 1).abs().square() + w.abs().square() * s


def equalize(y: torch.Tensor, h_hat: torch.Tensor, no, err_var: torch.Tensor | None = None,
             kind: str = "mmse") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equalise ``y`` per RE.

    :param y: received complex REs
    :param h_hat: channel estimate (same shape)
    :param no: ``N0`` broadcastable to ``y``
    :param err_var: estimation error variance or ``None`` (perfect CSI)
    :param kind: ``"zf"`` or ``"mmse"`` (unbiased LMMSE)
    :return: ``(y_eq, no_eff, w)``: equalised symbols, effective noise variance (real), weights
    """
    if kind == "zf":
        w = zf_weights(h_hat)
    elif kind == "mmse":
        w = lmmse_weights(h_hat, no, err_var, unbiased=True)
    else:
        raise ValueError(f"equalizer must be 'zf' or 'mmse'; got {kind!r}")
    return w * y, effective_noise(w, h_hat, no, err_var), w
