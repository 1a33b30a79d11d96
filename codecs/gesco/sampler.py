"""Classifier-free-guided reverse diffusion of the semantic UNet (diffusers' DDIM scheduler).

:class:`GescoSampler` draws images from a label condition: the doubled-batch guided ε of
:func:`~.model.guided_eps` at every step of a diffusers ``DDIMScheduler`` (the training's linear
betas, ``num_steps`` respaced steps, ``eta`` = 0 deterministic DDIM or 1 = DDPM-like ancestral
noise, ``x̂0`` clipped to [-1, 1]). NFE = 2 per step (the doubled batch counts as two evaluations).
"""

from __future__ import annotations

import torch

from .model import guided_eps

__all__ = ["GescoSampler", "scheduler_kwargs"]


def scheduler_kwargs(prediction: str = "epsilon") -> dict:
    """diffusers scheduler config (linear betas, T = 1000, ``prediction`` = the network's target)."""
    return dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                prediction_type=prediction, clip_sample=True)


class GescoSampler:
    """:param model: ``SemanticUNet``; :param guidance: CFG scale ``s``; :param num_steps: DDIM steps;
    :param eta: DDIM stochasticity; :param scheduler: diffusers scheduler kwargs (default: training's)."""

    def __init__(self, model, guidance: float = 2.0, num_steps: int = 50, eta: float = 0.0,
                 scheduler: dict | None = None):
        from diffusers import DDIMScheduler

        self.model, self.guidance, self.num_steps, self.eta = model, guidance, num_steps, eta
        self.sched = DDIMScheduler(**(scheduler or scheduler_kwargs()))

    @property
    def nfe(self) -> int:
        return 2 * self.num_steps

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """:param cond: ``[B, L, H, W]`` condition -> ``[B, 3, H, W]`` float32 in [0, 1]."""
        dev = cond.device
        b, _, h, w = cond.shape
        self.sched.set_timesteps(self.num_steps)
        x = torch.randn((b, 3, h, w), generator=generator, device=generator.device if generator else "cpu").to(dev)
        for t in self.sched.timesteps:
            tt = torch.full((b,), int(t), dtype=torch.long, device=dev)
            eps = guided_eps(self.model, x, tt, cond, self.guidance)
            x = self.sched.step(eps, t, x, eta=self.eta, generator=generator).prev_sample
        return ((x.clamp(-1, 1) + 1) / 2).float()
