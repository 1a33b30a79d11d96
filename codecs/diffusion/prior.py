"""Diffusion prior: an eps-prediction network plus its discrete noise schedule (DDPM / ADM maths).

Conventions: images in [-1, 1], shape ``[B, 3, H, W]``; timesteps ``t`` are ``[B]`` long indices
``0 .. T-1`` of *this* prior's chain (a respaced prior maps them to the network's original steps);
schedule buffers are float64 and coefficients are cast to the image dtype when applied.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from linksim.phy.validation import check_one_of

from .schedules import Schedule, spaced_timesteps

__all__ = ["Prior"]


def _at(buf: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """Gather ``buf[t]`` and shape it ``[B, 1, 1, 1]`` in ``like``'s dtype/device."""
    return buf.to(like.device)[t.to(like.device).long()].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


class Prior(nn.Module):
    """eps-prediction UNet + noise schedule. Images in [-1, 1], shape [B, 3, H, W].

    :param net: module called as ``net(x_t, t_net)`` -> ``[B, C, H, W]`` (eps) or ``[B, 2C, H, W]``
        (eps, then the learned-variance interpolant v in [-1, 1], ADM "learned_range").
    :param betas: ``[T]`` betas of this chain (float64).
    :param learned_sigma: whether ``net`` outputs the variance interpolant.
    :param timestep_map: ``[T]`` long: the network's timestep for each step of this chain
        (identity by default; set by :meth:`respaced`).
    :param fixed_variance: reverse-step variance when ``learned_sigma`` is False: ``"large"``
        (ADM default: ``beta_t``, with ``sigma~^2_1`` at t = 0) or ``"small"`` (the posterior
        variance ``sigma~^2_t``; diffusers' ``fixed_small``).

    Attributes: ``num_timesteps`` (T), buffers ``betas``, ``alphas_cumprod``,
    ``alphas_cumprod_prev``, ``posterior_variance``, ``posterior_log_variance_clipped``,
    ``posterior_mean_coef1``/``coef2``, ``timestep_map`` (all float64 except the map),
    ``reverse_variance`` (the fixed reverse-step variance); ``schedule`` the :class:`Schedule`.
    """

    def __init__(
        self,
        net: nn.Module,
        betas: Tensor,
        learned_sigma: bool,
        timestep_map: Tensor | None = None,
        fixed_variance: str = "large",
    ):
        super().__init__()
        check_one_of("fixed_variance", fixed_variance, ("large", "small"))
        self.fixed_variance = fixed_variance
        self.net = net
        self.learned_sigma = bool(learned_sigma)
        # every schedule buffer comes from the one Schedule (schedules.py), also used by the sampler
        self.schedule = Schedule(betas, timestep_map)
        self.num_timesteps = self.schedule.num_timesteps
        for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance",
                     "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"):
            self.register_buffer(name, getattr(self.schedule, name).clone())
        self.register_buffer("timestep_map", self.schedule.timesteps.clone())
        self.register_buffer("reverse_variance", self.schedule.fixed_variance(fixed_variance).clone(), persistent=False)

    # -- network ---------------------------------------------------------------------------

    def model_output(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor | None]:
        """Run the network once.

        :param x_t: ``[B, 3, H, W]`` noisy images.
        :param t: ``[B]`` long steps in ``[0, T-1]``.
        :returns: ``(eps, var)``: eps ``[B, 3, H, W]``; with learned sigma ``var`` is the per-pixel
            reverse-step variance ``exp(v' log beta_t + (1 - v') log sigma~^2_t)``, v' = (v+1)/2,
            ``[B, 3, H, W]`` (float32 at least, even when the network runs in half precision);
            ``None`` with fixed sigma.
        """
        t = t.to(x_t.device).long()
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        out = self.net(x_t, self.timestep_map.to(x_t.device)[t])
        c = x_t.shape[1]
        if not self.learned_sigma:
            return out[:, :c], None
        eps, v = out[:, :c], out[:, c : 2 * c]
        # At least float32: log-variances span ~[-20, -4] and bf16 would cost ~1 % in var.
        v = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
        frac = (v + 1) / 2
        log_var = frac * _at(torch.log(self.betas), t, v) + (1 - frac) * _at(
            self.posterior_log_variance_clipped, t, v
        )
        return eps, torch.exp(log_var)

    def eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        """Predicted noise ``[B, 3, H, W]`` for ``x_t`` ``[B, 3, H, W]`` at steps ``t`` ``[B]``."""
        return self.model_output(x_t, t)[0]

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.eps(x_t, t)

    # -- closed-form DDPM maths ------------------------------------------------------------

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Forward noising ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (same shapes)."""
        abar = _at(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Tweedie / DDPM inversion ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` (no clip)."""
        # Coefficients in float64 before the cast: 1/sqrt(abar) reaches ~156 at t = T-1.
        rec = _at(torch.rsqrt(self.alphas_cumprod), t, x_t)
        recm1 = _at(torch.sqrt(1 / self.alphas_cumprod - 1), t, x_t)
        return rec * x_t - recm1 * eps

    def posterior_mean_variance(
        self, x0: Tensor, x_t: Tensor, t: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """DDPM posterior ``q(x_{t-1} | x_t, x0)``.

        :returns: ``(mean [B,3,H,W], var [B,1,1,1], log_var [B,1,1,1])`` with
            ``mean = coef1 x0 + coef2 x_t``, ``var = beta_t (1 - abar_{t-1}) / (1 - abar_t)`` and
            ``log_var`` clipped at t = 0 (ADM convention; var itself is 0 there).
        """
        mean = _at(self.posterior_mean_coef1, t, x_t) * x0 + _at(self.posterior_mean_coef2, t, x_t) * x_t
        return (
            mean,
            _at(self.posterior_variance, t, x_t),
            _at(self.posterior_log_variance_clipped, t, x_t),
        )

    def p_sample_stats(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Statistics of one ancestral step ``p(x_{t-1} | x_t)``.

        x0_hat is the unclipped Tweedie estimate (callers clip if they want; the mean uses it as
        is). With fixed sigma the variance follows ``fixed_variance`` ("large": ``beta_t`` for
        t >= 1 and ``sigma~^2_1`` at t = 0; "small": ``sigma~^2_t``).

        :returns: ``(mean, var, x0_hat, eps)``: mean/x0_hat/eps ``[B, 3, H, W]``; var
            ``[B, 3, H, W]`` (learned) or ``[B, 1, 1, 1]`` (fixed).
        """
        eps, var = self.model_output(x_t, t)
        x0_hat = self.predict_x0(x_t, t, eps)
        mean, _, _ = self.posterior_mean_variance(x0_hat, x_t, t)
        if var is None:
            var = _at(self.reverse_variance, t, x_t)
        return mean, var, x0_hat, eps

    # -- respacing ---------------------------------------------------------------------------

    def respaced(self, num_steps: int | str | Sequence[int]) -> Prior:
        """A prior on a strided sub-chain sharing this network (ADM ``SpacedDiffusion``).

        :param num_steps: as in :func:`~linksim.codecs.diffusion.schedules.spaced_timesteps`.
        :returns: a :class:`Prior` with ``T' = len(kept)`` steps whose ``abar`` equal the kept
            steps' ``abar``, and whose ``timestep_map`` sends step k to the network's step.
        """
        return self.on_steps(spaced_timesteps(self.num_timesteps, num_steps))

    def on_steps(self, kept: Tensor | Sequence[int]) -> Prior:
        """A prior on the sub-chain that visits exactly the steps ``kept`` (sorted, of this chain):
        :meth:`Schedule.respace`, so a learned variance is re-interpolated between the respaced
        ``β'`` and ``β̃'`` (ADM ``SpacedDiffusion``); the identity when ``kept`` is every step."""
        kept = torch.as_tensor(kept, dtype=torch.long).flatten().cpu()
        if kept.numel() == self.num_timesteps and bool((kept == torch.arange(self.num_timesteps)).all()):
            return self
        sched = self.schedule.respace(kept)
        return Prior(self.net, sched.betas, self.learned_sigma, sched.timesteps, self.fixed_variance)
