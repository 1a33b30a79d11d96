"""DiffCom: diffusion posterior sampling guided by the received symbols (ζ=1, lr=1 published).

``loss = ζ·‖y − A(x̂0)‖₂`` per image (not squared), ``A`` = JSCC encoder -> chain's noise-free
forward operator with the *estimated* channel; the loop starts from noise at ``t = T−1``. On
equalised links the residual is MMSE-bias weighted by default (``measurement``, see
:class:`~linksim.codecs.diffusion.sampler.DiffusionReceiver`).
"""

from __future__ import annotations

import torch

from .sampler import DiffusionReceiver

__all__ = ["DiffCom"]


class DiffCom(DiffusionReceiver):
    """DiffCom receiver; see :class:`~linksim.codecs.diffusion.sampler.DiffusionReceiver` for the
    parameters (``zeta=1``, ``lr=1`` defaults, ``num_steps=None`` = all ``T`` steps)."""

    def guide(self, x0_hat: torch.Tensor, ctx: dict, step: int) -> torch.Tensor:
        return self.zeta * self.residual_norm(ctx["state"].forward_operator(self.encode(x0_hat)), ctx)
