"""Building blocks of ADJSCC: generalised divisive normalisation (GDN/IGDN) and the attention
feature (AF) module.

GDN is written here rather than imported: the well-kept implementation (CompressAI) pulls in
torch-geometric, aiohttp and a numpy downgrade on install, far too heavy for one 30-line layer. The
parametrisation (stored ``sqrt(beta + pedestal)`` / ``sqrt(gamma + pedestal)`` with a lower bound
whose gradient still pushes values back up) is the one of Ballé et al., "Density modeling of
images using a generalized normalization transformation" (ICLR 2016), which is also the one the
public ADJSCC checkpoints store, so their tensors load without conversion.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GDN", "AFModule", "lower_bound"]


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient also passes where ``x < bound`` if it would raise ``x``.

    A plain ``clamp`` has zero gradient below the bound, so a parameter that falls under it would
    be stuck there for good; this keeps it trainable (Ballé 2016, appendix).
    """

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (grad < 0)
        return grad * pass_through.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``max(x, bound)`` with the gradient rule of :class:`_LowerBound`."""
    return _LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalised divisive normalisation ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``.

    With ``inverse=True`` (IGDN, decoder side) it multiplies instead of dividing.

    :param channels: number of feature channels ``F``
    :param inverse: IGDN instead of GDN
    :param beta_min: lower bound of the effective ``beta`` (keeps the denominator positive)
    :param gamma_init: initial diagonal of the effective ``gamma``
    :param reparam_offset: offset of the square-root parametrisation (``pedestal = offset^2``)

    Parameters (state-dict keys): ``beta`` ``[F]`` and ``gamma`` ``[F, F]``, both stored as
    ``sqrt(value + pedestal)``.

    Input and output: ``[B, F, H, W]`` float.
    """

    def __init__(
        self,
        channels: int,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
        reparam_offset: float = 2.0**-18,
    ):
        super().__init__()
        self.inverse = bool(inverse)
        self.pedestal = reparam_offset**2
        self.beta_bound = (beta_min + self.pedestal) ** 0.5
        self.gamma_bound = reparam_offset
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self.pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self.pedestal))

    def effective_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective ``(beta [F], gamma [F, F])`` after bounding and re-squaring."""
        beta = lower_bound(self.beta, self.beta_bound) ** 2 - self.pedestal
        gamma = lower_bound(self.gamma, self.gamma_bound) ** 2 - self.pedestal
        return beta, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.effective_params()
        ch = gamma.shape[0]
        norm = torch.sqrt(F.conv2d(x * x, gamma.view(ch, ch, 1, 1), beta))
        return x * norm if self.inverse else x / norm


class AFModule(nn.Module):
    """Attention feature module of ADJSCC (Xu et al. 2021): SNR-dependent channel scaling.

    ``s = sigmoid(FC2(ReLU(FC1([snr_db, avgpool(x)]))))``, output ``x * s`` per channel. The SNR
    comes *first* in the concatenation (as in the public checkpoints).

    :param channels: ``F``; FC1 maps ``F+1 -> (F+1)//16`` (at least 1), FC2 maps back to ``F``

    Input: ``x`` ``[B, F, H, W]``, ``snr_db`` ``[B, 1]`` (CSNR in dB, not linear). Output like ``x``.
    """

    def __init__(self, channels: int):
        super().__init__()
        hidden = max((channels + 1) // 16, 1)
        self.fc1 = nn.Linear(channels + 1, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        context = torch.cat((snr_db.to(x.dtype), x.mean(dim=(2, 3))), dim=1)
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(context))))
        return x * scale[:, :, None, None]
