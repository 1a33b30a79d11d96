"""Noise schedules of discrete-time diffusion (DDPM / ADM conventions), all float64.

``betas[t]`` is the variance added at step t (t = 0 .. T-1); ``alphas_cumprod[t] = prod_{s<=t}
(1 - betas[s])`` so that ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "linear_betas",
    "cosine_betas",
    "alphas_cumprod_from_betas",
    "spaced_timesteps",
    "respaced_betas",
    "log_snr",
]


def linear_betas(T: int = 1000, start: float = 1e-4, end: float = 0.02) -> Tensor:
    """Linear beta schedule of Ho et al. (DDPM).

    Endpoints are given for T=1000 and rescaled by ``1000 / T`` as ADM does, so other T keep the
    same overall noise level.

    :returns: ``[T]`` float64, ``betas[0] = start * 1000/T``, ``betas[-1] = end * 1000/T``.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    scale = 1000.0 / T
    return torch.linspace(scale * start, scale * end, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Cosine schedule of Nichol & Dhariwal: ``abar(u) = cos^2(((u + s)/(1 + s)) pi/2)``.

    :returns: ``[T]`` float64 betas ``1 - abar((t+1)/T) / abar(t/T)``, clipped at ``max_beta``.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    abar = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def alphas_cumprod_from_betas(betas: Tensor) -> Tensor:
    """``abar_t = prod_{s<=t} (1 - beta_s)``, float64 ``[T]``."""
    return torch.cumprod(1 - betas.double(), dim=0)


def spaced_timesteps(T: int, num_steps: int | str | Sequence[int]) -> Tensor:
    """Timesteps of the original T-step chain kept by a strided sampler (ADM ``space_timesteps``).

    :param T: length of the original chain.
    :param num_steps: an int K (K evenly spread steps, as one section), a list of per-section
        counts (the chain is cut in ``len(list)`` equal sections, each spread evenly with
        fractional stride, first and last step of the section included), a comma-separated
        string of counts, or ``"ddimK"`` (integer stride ``T // K`` from 0, as DDIM).
    :returns: sorted ``[K]`` long tensor of kept timesteps in ``[0, T-1]``.
    :raises ValueError: if a section cannot hold its count or no integer DDIM stride gives K.
    """
    if isinstance(num_steps, str):
        if num_steps.startswith("ddim"):
            k = int(num_steps[len("ddim"):])
            for stride in range(1, T):
                if len(range(0, T, stride)) == k:
                    return torch.arange(0, T, stride, dtype=torch.long)
            raise ValueError(f"cannot create exactly {k} steps with an integer stride from T={T}")
        counts = [int(c) for c in num_steps.split(",")]
    elif isinstance(num_steps, int):
        counts = [num_steps]
    else:
        counts = [int(c) for c in num_steps]
    size, extra = divmod(T, len(counts))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(counts):
        section = size + (1 if i < extra else 0)
        if count > section or count < 1:
            raise ValueError(f"cannot take {count} steps from a section of {section} steps")
        stride = 1.0 if count == 1 else (section - 1) / (count - 1)
        # Running fractional index, rounded (Python round: half to even) as ADM does.
        cur = 0.0
        for _ in range(count):
            kept.append(start + round(cur))
            cur += stride
        start += section
    return torch.tensor(sorted(set(kept)), dtype=torch.long)


def respaced_betas(alphas_cumprod: Tensor, timesteps: Tensor) -> Tensor:
    """Betas of the strided chain that visits only ``timesteps``, keeping their ``abar`` exact.

    ``beta'_k = 1 - abar[t_k] / abar[t_{k-1}]`` with ``abar[t_{-1}] = 1``.

    :param alphas_cumprod: ``[T]`` float64 of the original chain.
    :param timesteps: sorted ``[K]`` long kept timesteps.
    :returns: ``[K]`` float64.
    """
    abar = alphas_cumprod.double()[timesteps.long()]
    prev = torch.cat([abar.new_ones(1), abar[:-1]])
    return 1 - abar / prev


def log_snr(alphas_cumprod: Tensor) -> Tensor:
    """Natural-log signal-to-noise ratio ``log(abar / (1 - abar))`` per step, float64 ``[T]``.

    (DiffCom's adaptive start uses ``log10``; divide by ``ln 10``.)
    """
    abar = alphas_cumprod.double()
    return torch.log(abar) - torch.log1p(-abar)
