"""Adaptive coding length of LRISC: channel symbols per latent group from its information.

The latent ``y`` ``[B, M, h, w]`` is split into groups of ``p x p`` latent positions (``G`` groups
per image, row-major). Group ``g`` carries ``I_g = Σ −log2 p(ŷ_i | hyperprior)`` bits of
estimated information (the entropy model of :mod:`.entropy`) and gets

    k_g = Q(β · I_g)

complex channel symbols (the paper's ``K = Σ Q(−β·log p(z_i | hyperprior))``, per group), where
``Q`` maps to the nearest allowed length of a table ``(k_0 < k_1 < … < k_{L−1})``. The chosen
lengths are side information: ``⌈log2 L⌉`` bits per group, sent digitally (counted in the
image's channel uses, :func:`side_symbols`). Two budgets:

* ``fixed_total``: per image, the largest ``β`` with ``Σ_g k_g ≤ N − N_side`` (bisection;
  ``Q`` is monotone in ``β``, so the total is too) — no image ever exceeds the budget;
* ``adaptive``: one ``β`` for all images, calibrated on a pool of training groups so that the
  *mean* total meets ``N − N_side`` (:func:`calibrate_beta`): detailed images get more symbols than
  the budget, flat ones fewer.
"""

from __future__ import annotations

import math

import torch

from .settings import LengthTable as Lengths
from .settings import side_bits, side_symbols  # noqa: F401 (torch-free; re-exported)

__all__ = ["LengthTable", "quantize_lengths", "fit_beta", "calibrate_beta", "side_bits", "side_symbols",
           "allocate"]


class LengthTable(Lengths):
    """:class:`linksim.codecs.lrisc.settings.LengthTable` (torch-free) with the lengths as a tensor.

    >>> LengthTable((0, 4, 8)).tensor().tolist()
    [0.0, 4.0, 8.0]
    """

    def tensor(self, device=None) -> torch.Tensor:
        return torch.tensor(self.lengths, dtype=torch.float32, device=device)


def quantize_lengths(target: torch.Tensor, table: LengthTable) -> torch.Tensor:
    """Index of the table length nearest to each ``target`` (ties to the shorter one).

    :input target: ``[...]`` float, ``β·I_g`` [symbols]
    :output: ``[...]`` int64 indices into ``table.lengths``
    """
    t = table.tensor(target.device)
    mids = (t[1:] + t[:-1]) / 2  # Q(v) = k_j for mids[j-1] < v <= mids[j]
    return torch.bucketize(target.float().contiguous(), mids, right=False)


def _totals(info: torch.Tensor, beta: torch.Tensor, table: LengthTable) -> torch.Tensor:
    """``Σ_g Q(β·I_g)`` per row of ``info`` ``[B, G]`` for ``beta`` ``[B]``."""
    idx = quantize_lengths(info * beta[:, None], table)
    return table.tensor(info.device)[idx].sum(dim=1)


def fit_beta(info: torch.Tensor, budget: int, table: LengthTable, iters: int = 60) -> torch.Tensor:
    """Per image, the largest ``β`` with ``Σ_g Q(β·I_g) ≤ budget`` (``fixed_total``).

    :input info: ``[B, G]`` bits per group (``>= 0``)
    :param budget: data symbols per image
    :output: ``[B]`` float64 ``β`` (``inf`` when even every group at the table's maximum fits)
    """
    info = info.double()
    b = info.shape[0]
    hi_total = table.max * info.shape[1]
    lo = torch.zeros(b, dtype=torch.float64, device=info.device)
    # an upper bracket: β large enough that every group with I_g > 0 sits at the maximum length
    pos = info.clamp_min(1e-9)
    hi = torch.full_like(lo, float(table.max) * 2) / pos.min(dim=1).values
    for _ in range(iters):
        mid = (lo + hi) / 2
        ok = _totals(info, mid, table) <= budget
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return torch.where(torch.full_like(lo, float(hi_total)) <= budget, torch.full_like(lo, math.inf), lo)


def calibrate_beta(pool: torch.Tensor, budget_per_group: float, table: LengthTable, iters: int = 60) -> float:
    """One ``β`` for ``adaptive``: the largest with ``mean_g Q(β·I_g) ≤ budget_per_group`` over ``pool``.

    :input pool: ``[P]`` bits of many training groups (the calibration set shipped with the model)
    :param budget_per_group: ``(N − N_side) / G`` symbols
    """
    pool = pool.double().reshape(1, -1)
    if table.max <= budget_per_group:
        return math.inf
    lo, hi = 0.0, float(table.max) * 2 / float(pool.clamp_min(1e-9).min())
    for _ in range(iters):
        mid = (lo + hi) / 2
        mean = float(_totals(pool, torch.tensor([mid], dtype=torch.float64), table)) / pool.shape[1]
        lo, hi = (mid, hi) if mean <= budget_per_group else (lo, mid)
    return lo


def allocate(info: torch.Tensor, table: LengthTable, mode: str, data_budget: int,
             beta: float | None = None) -> torch.Tensor:
    """Lengths per group.

    :input info: ``[B, G]`` bits per group
    :param mode: ``fixed_total`` (per-image β, :func:`fit_beta`) or ``adaptive`` (the given ``beta``)
    :param data_budget: data symbols per image (``N − N_side``)
    :param beta: the calibrated ``β`` of ``adaptive`` (:func:`calibrate_beta`)
    :output: ``[B, G]`` int64 table indices
    """
    if mode == "fixed_total":
        b = fit_beta(info, data_budget, table)
        b = torch.where(torch.isinf(b), torch.full_like(b, 1e30), b)
        return quantize_lengths(info.double() * b[:, None], table)
    if mode == "adaptive":
        if beta is None:
            raise ValueError("adaptive lengths need a calibrated beta")
        return quantize_lengths(info.double() * min(beta, 1e30), table)
    raise ValueError(f"length must be 'adaptive' or 'fixed_total'; got {mode!r}")
