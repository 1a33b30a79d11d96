"""GESCO's semantic maps: the condition tensor, the present-class side information, the paper's σ.

The sender's maps are the one-hot maps of the classes present in the image plus the instance-edge
map (SPADE's edge channel); the receiver's condition is ``[K + 1, H, W]``: the ``K`` class slots
(absent classes as zeros) and the edge map last.

:data:`PAPER_SIGMA` is the table of the public GESCO code that maps its "PSNR" keys to the std of
the Gaussian noise added straight onto the maps; :data:`NOISY_TRAINING_SIGMAS` is the list one σ
per training batch is drawn from (three of nine entries clean).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .scenes import instance_edges
from .settings import PAPER_SIGMA  # the paper's noise table (torch-free: the validator checks csnr_db keys)

__all__ = ["PAPER_SIGMA", "NOISY_TRAINING_SIGMAS", "condition", "present_classes", "paper_channel"]

#: noisy training: each batch draws its σ uniformly from this list (clean weighted 3/9)
NOISY_TRAINING_SIGMAS: tuple[float, ...] = (0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0, 0.0)


def condition(labels: torch.Tensor, instances: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """One-hot class maps + instance-edge map.

    :param labels: ``[B, H, W]`` long class ids (``>= num_classes``, e.g. 255 = unlabelled: all zero)
    :param instances: ``[B, H, W]`` instance ids, or ``None`` (edge map of the label map instead)
    :return: ``[B, num_classes + 1, H, W]`` float32 in {0, 1}
    """
    valid = labels < num_classes
    onehot = F.one_hot(torch.where(valid, labels, 0).long(), num_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * valid[:, None].float()
    edges = instance_edges(instances if instances is not None else labels)
    return torch.cat([onehot, edges[:, None]], dim=1)


def present_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[B, K]`` bool: the classes present in each label map (the side information)."""
    b = labels.shape[0]
    flat = labels.reshape(b, -1)
    return torch.stack([torch.bincount(f[f < num_classes], minlength=num_classes)[:num_classes] > 0 for f in flat])


def paper_channel(cond: torch.Tensor, present: torch.Tensor, sigma: float, generator: torch.Generator | None) -> torch.Tensor:
    """The paper's channel: ``σ·N(0, 1)`` added onto the sent maps (present classes + edge map);
    the absent class slots stay zero (they are not sent).

    :param cond: ``[B, K + 1, H, W]``; :param present: ``[B, K]`` bool
    """
    if sigma == 0:
        return cond.clone()
    sent = torch.cat([present, torch.ones_like(present[:, :1])], dim=1).float()[:, :, None, None]
    noise = torch.randn(cond.shape, generator=generator, device=cond.device, dtype=cond.dtype)
    return cond + sigma * noise * sent
