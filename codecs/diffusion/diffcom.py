"""DiffCom: diffusion posterior sampling guided by the received symbols (ζ=1, lr=1 published).

``loss = ζ·‖y − A(x̂0)‖₂`` per image (not squared). By default (``measurement: received``, the
reference) ``y`` = the received, un-equalised data samples ``Y_data`` and ``A(x̂0) = Ĥ ⊙ X(x̂0)``
(JSCC encoder -> unit power -> interleaver -> data REs, Ĥ the link's estimate); the loop starts
from noise at ``t = T−1`` and the last step is unguided. ``measurement: equalised`` is linksim's
MMSE-bias weighted variant on the equalised symbols (see
:mod:`~linksim.codecs.diffusion.sampler`).
"""

from __future__ import annotations

import torch

from .sampler import DiffusionReceiver, MeasurementContext

__all__ = ["DiffCom"]


class DiffCom(DiffusionReceiver):
    """DiffCom receiver; see :class:`~linksim.codecs.diffusion.sampler.DiffusionReceiver` for the
    parameters (``zeta=1``, ``lr=1`` defaults, ``num_steps=None`` = all ``T`` steps)."""

    def guide(self, x0_hat: torch.Tensor, ctx: MeasurementContext, step: int) -> torch.Tensor:
        return self.zeta * self.residual_norm(self.simulate(self.encode(x0_hat), ctx), ctx)
