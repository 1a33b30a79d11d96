"""Noise schedules of discrete-time diffusion (DDPM / ADM conventions), all float64.

The one place where betas, their respacing and the DDPM posterior coefficients are computed: the
receivers' sampler, :class:`~linksim.codecs.diffusion.prior.Prior` and the prior training all use
:class:`Schedule` (and its :meth:`Schedule.respace`).

``betas[t]`` is the variance added at step t (t = 0 .. T-1); ``alphas_cumprod[t] = prod_{s<=t}
(1 - betas[s])`` so that ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "Schedule",
    "posterior_coefficients",
    "linear_betas",
    "cosine_betas",
    "alphas_cumprod_from_betas",
    "spaced_timesteps",
    "respaced_betas",
    "log_snr",
]


def linear_betas(T: int = 1000, start: float = 1e-4, end: float = 0.02, rescale: bool = True) -> Tensor:
    """Linear beta schedule of Ho et al. (DDPM).

    :param rescale: ``True`` (ADM ``get_named_beta_schedule("linear")``): the endpoints are given
        for T=1000 and scaled by ``1000 / T``, so other T keep the same overall noise level;
        ``False`` (diffusers ``beta_schedule: linear``, the trainings): endpoints as given.
        Both agree at T = 1000.
    :returns: ``[T]`` float64 from ``start·c`` to ``end·c`` (``c = 1000/T`` or 1).
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    scale = 1000.0 / T if rescale else 1.0
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


def posterior_coefficients(a_t: float, a_s: float) -> tuple[float, float, float]:
    """DDPM posterior ``q(x_s | x_t, x0) = N(c0·x0 + ct·x_t, var)`` between two steps of a chain.

    ``s`` is the step after ``t`` (``t − 1``, or the next kept step of a respaced chain) and
    ``β = 1 − ᾱ_t/ᾱ_s`` the (respaced) beta between them; ``c0 = √ᾱ_s·β/(1−ᾱ_t)``,
    ``ct = √(1−β)·(1−ᾱ_s)/(1−ᾱ_t)``, ``var = β·(1−ᾱ_s)/(1−ᾱ_t)``. The last step passes
    ``a_s = 1`` (``ᾱ_{−1}``): then ``c0 = 1``, ``ct = 0``, ``var = 0``.

    >>> posterior_coefficients(0.5, 1.0)
    (1.0, 0.0, 0.0)
    """
    beta = 1.0 - a_t / a_s
    c0 = a_s**0.5 * beta / (1.0 - a_t)
    ct = (1.0 - beta) ** 0.5 * (1.0 - a_s) / (1.0 - a_t)
    return c0, ct, beta * (1.0 - a_s) / (1.0 - a_t)


@dataclass(frozen=True)
class Schedule:
    """A discrete DDPM chain: betas, the original steps they stand for, and every derived buffer.

    :param betas: ``[T]`` float64 betas of this chain
    :param timesteps: ``[T]`` long: the original (network) step of each step of this chain;
        identity by default, the kept steps after :meth:`respace`

    Derived (float64 ``[T]``): ``alphas_cumprod`` ``ᾱ``, ``alphas_cumprod_prev`` (``ᾱ_{t−1}``,
    1 at t = 0), ``posterior_variance`` ``β̃_t = β_t(1−ᾱ_{t−1})/(1−ᾱ_t)``,
    ``posterior_log_variance_clipped`` (``log β̃`` with t = 0 replaced by t = 1, ADM),
    ``posterior_mean_coef1`` ``β_t√ᾱ_{t−1}/(1−ᾱ_t)``, ``posterior_mean_coef2``
    ``(1−ᾱ_{t−1})√(1−β_t)/(1−ᾱ_t)``.

    >>> s = Schedule(linear_betas(10, rescale=False)).respace(torch.tensor([0, 4, 9]))
    >>> s.timesteps.tolist(), bool(torch.allclose(s.alphas_cumprod, Schedule(linear_betas(10, rescale=False)).alphas_cumprod[[0, 4, 9]]))
    ([0, 4, 9], True)
    """

    betas: Tensor
    timesteps: Tensor | None = None
    alphas_cumprod: Tensor = field(init=False, repr=False)
    alphas_cumprod_prev: Tensor = field(init=False, repr=False)
    posterior_variance: Tensor = field(init=False, repr=False)
    posterior_log_variance_clipped: Tensor = field(init=False, repr=False)
    posterior_mean_coef1: Tensor = field(init=False, repr=False)
    posterior_mean_coef2: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        betas = torch.as_tensor(self.betas, dtype=torch.float64).flatten().cpu()
        if betas.numel() < 1 or not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("betas must be a non-empty vector with values in (0, 1]")
        T = betas.numel()
        ts = torch.arange(T, dtype=torch.long) if self.timesteps is None else torch.as_tensor(
            self.timesteps, dtype=torch.long).flatten().cpu()
        if ts.numel() != T:
            raise ValueError(f"timesteps has {ts.numel()} entries, expected {T}")
        abar = alphas_cumprod_from_betas(betas)
        prev = torch.cat([abar.new_ones(1), abar[:-1]])
        post = betas * (1 - prev) / (1 - abar)
        # posterior_variance[0] = 0; ADM clips the log by reusing step 1's value there.
        clipped = torch.cat([post[1:2], post[1:]]) if T > 1 else betas.clone()
        values = dict(betas=betas, timesteps=ts, alphas_cumprod=abar, alphas_cumprod_prev=prev,
                      posterior_variance=post, posterior_log_variance_clipped=torch.log(clipped),
                      posterior_mean_coef1=betas * prev.sqrt() / (1 - abar),
                      posterior_mean_coef2=(1 - prev) * (1 - betas).sqrt() / (1 - abar))
        for k, v in values.items():
            object.__setattr__(self, k, v)

    @property
    def num_timesteps(self) -> int:
        return int(self.betas.numel())

    def fixed_variance(self, kind: str) -> Tensor:
        """Reverse-step variance without a learned sigma: ``"large"`` (ADM: ``β_t``, ``β̃_1`` at
        t = 0) or ``"small"`` (``β̃_t``; diffusers ``fixed_small``), ``[T]`` float64."""
        if kind == "large":
            return torch.cat([self.posterior_variance[1:2], self.betas[1:]])
        if kind == "small":
            return self.posterior_variance
        raise ValueError(f"fixed variance must be 'large' or 'small', got {kind!r}")

    def respace(self, kept: Tensor | Sequence[int]) -> Schedule:
        """The chain that visits only the steps ``kept`` (indices of *this* chain), ADM
        ``SpacedDiffusion``: ``β'_k = 1 − ᾱ[kept_k]/ᾱ[kept_{k−1}]``, so ``ᾱ`` is exact at the kept
        steps and ``β̃'``, the posterior coefficients and a learned variance's interpolation
        range ``[β̃', β']`` all follow from ``β'``.

        :param kept: sorted distinct steps in ``[0, T−1]``
        """
        kept = torch.as_tensor(kept, dtype=torch.long).flatten().cpu()
        if kept.numel() < 1 or bool((kept[1:] <= kept[:-1]).any()) or int(kept[0]) < 0 \
                or int(kept[-1]) >= self.num_timesteps:
            raise ValueError(f"kept steps must be sorted, distinct and in [0, {self.num_timesteps - 1}]")
        return Schedule(respaced_betas(self.alphas_cumprod, kept), self.timesteps[kept])
