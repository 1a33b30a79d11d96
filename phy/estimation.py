"""Pilot-based OFDM channel estimation: perfect CSI, LS and frequency-domain LMMSE.

Both estimators are Sionna pilot estimators (:class:`~sionna.phy.ofdm.BasePilotChannelEstimator`):
the received pilots are extracted from the resource grid, estimated at the pilot REs, and
interpolated over the OFDM symbols (``"nn"``: each symbol takes its nearest pilot symbol; with
one pilot symbol and a static channel this is a hold; ``"lin"``: linear between pilot symbols).

- LS: Sionna's :class:`~sionna.phy.ofdm.LSChannelEstimator`: ``ĥ = y / p``, ``err_var = N0/|p|²``.
- LMMSE: LS followed by smoothing across the subcarriers of each pilot symbol with the known
  frequency covariance ``R`` (``R = F diag(p) F^H`` for a PDP ``p``):
  ``ĥ = R (R + Σ)^{-1} ĥ_LS`` with ``Σ = diag(N0/|p|²)``; error covariance
  ``R - R (R + Σ)^{-1} R``, whose diagonal is reported as ``err_var``.
  Sionna's ``LMMSEChannelEstimator`` also filters across time (needs a time covariance; for a
  static channel that pass adds nothing but cost, ~350 ms per 64 slots on CPU), so the
  frequency-only filter is implemented here as the ``estimate_at_pilot_locations`` of a Sionna
  pilot estimator, in float64 because ``R`` has rank ``L << M`` and ``R + N0 I`` is
  ill-conditioned at high SNR; with constant-modulus pilots (linksim's QPSK) it uses the
  eigendecomposition of ``R`` computed once, otherwise a Cholesky solve per pilot symbol.

Layout used by linksim (one transmitter, one stream, one antenna): Sionna's
``[B, 1, 1, S, M]`` received grids and ``[B, 1, 1, 1, 1, S, M]`` estimates.
"""

from __future__ import annotations

import torch
from sionna.phy.ofdm import BasePilotChannelEstimator, LSChannelEstimator, ResourceGrid

__all__ = ["LSEstimator", "FrequencyLMMSEEstimator", "lmmse_smooth", "lmmse_smooth_eig", "build_estimator"]

LSEstimator = LSChannelEstimator


def lmmse_smooth(h_ls: torch.Tensor, err_var: torch.Tensor, cov: torch.Tensor):
    """LMMSE smoothing of noisy estimates of a vector with covariance ``cov``.

    :param h_ls: ``[..., M]`` complex, ``h + e`` with ``e ~ CN(0, diag(err_var))`` independent of h
    :param err_var: ``[..., M]`` real, variance of ``e`` per element
    :param cov: ``[M, M]`` complex Hermitian ``E[h h^H]``
    :return: ``(h_hat [..., M], mse [..., M])``: ``R (R+Σ)^{-1} h_ls`` and the diagonal of
        ``R - R (R+Σ)^{-1} R``; computed in float64, returned in the input precision
    """
    r = cov.to(torch.complex128)
    x = h_ls.to(torch.complex128)
    sigma = err_var.to(torch.float64)
    a = r + torch.diag_embed(sigma.to(torch.complex128))  # [..., M, M]
    chol = torch.linalg.cholesky(a)
    # z = (R + Σ)^{-1} h_ls ;  X = (R + Σ)^{-1} R
    z = torch.cholesky_solve(x.unsqueeze(-1), chol).squeeze(-1)
    xr = torch.cholesky_solve(r.expand(a.shape), chol)
    h_hat = z @ r.T  # (R z) per row; R Hermitian
    mse = (r.diagonal().real - (r * xr.transpose(-1, -2)).sum(-1).real).clamp_min(0.0)
    real = err_var.dtype
    return h_hat.to(h_ls.dtype), mse.to(real)


def lmmse_smooth_eig(h_ls: torch.Tensor, err_var: torch.Tensor, eigvals: torch.Tensor,
                     eigvecs: torch.Tensor):
    """:func:`lmmse_smooth` for a noise variance that is the same on all ``M`` elements.

    With ``R = U diag(λ) U^H``: ``ĥ = U diag(λ/(λ+σ²)) U^H h_ls`` and
    ``mse_k = Σ_i |U_ki|² λ_i σ² / (λ_i + σ²)``, two ``M x M`` products per vector instead of a
    factorisation (about 50x faster than batched complex Cholesky solves on CPU).

    :param h_ls: ``[..., M]`` complex
    :param err_var: ``[...]`` real, the common noise variance ``σ²`` of each vector
    :param eigvals: ``[M]`` float64, ``eigvecs``: ``[M, M]`` complex128 from ``eigh(R)``
    """
    lam = eigvals.clamp_min(0.0)
    s2 = err_var.to(torch.float64).unsqueeze(-1)  # [..., 1]
    gain = lam / (lam + s2)  # [..., M]
    u = eigvecs
    coef = (h_ls.to(torch.complex128) @ u.conj()) * gain  # U^H h, row-vector form
    h_hat = coef @ u.T
    mse = (gain * s2) @ u.abs().square().T  # Σ_i |U_ki|² λ_i σ²/(λ_i+σ²)
    return h_hat.to(h_ls.dtype), mse.to(err_var.dtype)


class FrequencyLMMSEEstimator(BasePilotChannelEstimator):
    """LS at the pilots, LMMSE smoothing across subcarriers, then time interpolation.

    Requires every pilot-carrying OFDM symbol to carry pilots on all effective subcarriers
    (linksim's grids do); pilots may be any non-zero symbols.

    :param resource_grid: Sionna resource grid (its pilot pattern)
    :param cov_freq: ``[M, M]`` frequency covariance of the channel on the effective subcarriers
    :param interpolation_type: ``"nn"`` | ``"lin"`` (over OFDM symbols)
    :param precision: ``"single"`` | ``"double"``
    :param device: torch device

    :input y: ``[B, 1, 1, S, M]`` complex received grid
    :input no: ``[B]`` (or broadcastable) noise variance ``N0``
    :output h_hat: ``[B, 1, 1, 1, 1, S, M]`` complex
    :output err_var: same shape, real
    """

    def __init__(self, resource_grid: ResourceGrid, cov_freq: torch.Tensor, interpolation_type: str = "nn",
                 precision=None, device=None):
        super().__init__(resource_grid, interpolation_type=interpolation_type, precision=precision,
                         device=device)
        m = resource_grid.num_effective_subcarriers
        mask = resource_grid.pilot_pattern.mask.reshape(-1, resource_grid.num_ofdm_symbols, m)
        rows = mask.any(-1)
        if mask.shape[0] != 1 or not bool(mask[rows].all()):
            raise ValueError("FrequencyLMMSEEstimator needs one stream and full pilot OFDM symbols")
        if tuple(cov_freq.shape) != (m, m):
            raise ValueError(f"cov_freq must be [{m}, {m}]; got {tuple(cov_freq.shape)}")
        self.num_subcarriers = m
        self.register_buffer("_cov", cov_freq.to(torch.complex128).to(self.device), persistent=False)
        # Constant-modulus pilots give the same LS noise on every subcarrier: use the
        # eigendecomposition of R (computed once) instead of a solve per pilot symbol.
        pil = resource_grid.pilot_pattern.pilots.abs()
        pil = pil[pil > 0]
        self._constant_modulus = bool((pil - pil[0]).abs().max() < 1e-6)
        lam, u = torch.linalg.eigh(self._cov)
        self.register_buffer("_eigvals", lam, persistent=False)
        self.register_buffer("_eigvecs", u, persistent=False)
        self._ls = LSChannelEstimator(resource_grid, precision=precision, device=device)

    def estimate_at_pilot_locations(self, y_pilots: torch.Tensor, no: torch.Tensor):
        h_ls, err = self._ls.estimate_at_pilot_locations(y_pilots, no)
        shape = h_ls.shape  # [..., P*M], pilots in (symbol, subcarrier) order
        m = self.num_subcarriers
        h_ls, err = h_ls.reshape(*shape[:-1], -1, m), err.reshape(*shape[:-1], -1, m)
        if self._constant_modulus:
            h, mse = lmmse_smooth_eig(h_ls, err.mean(-1), self._eigvals, self._eigvecs)
        else:
            h, mse = lmmse_smooth(h_ls, err, self._cov)
        return h.reshape(shape), mse.reshape(shape)


def build_estimator(kind: str, resource_grid: ResourceGrid, cov_freq: torch.Tensor | None = None,
                    interpolation_type: str = "nn", precision=None, device=None):
    """``"ls"`` -> :class:`LSEstimator`, ``"lmmse"`` -> :class:`FrequencyLMMSEEstimator`,
    ``"perfect"`` -> ``None`` (the link uses the true channel)."""
    if kind == "perfect":
        return None
    if kind == "ls":
        return LSEstimator(resource_grid, interpolation_type=interpolation_type, precision=precision,
                           device=device)
    if kind == "lmmse":
        if cov_freq is None:
            raise ValueError("LMMSE estimation needs the channel's frequency covariance")
        return FrequencyLMMSEEstimator(resource_grid, cov_freq, interpolation_type, precision, device)
    raise ValueError(f"estimator must be 'perfect', 'ls' or 'lmmse'; got {kind!r}")
