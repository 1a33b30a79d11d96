"""The paper's setting as a function: noisy maps (``transmit: paper``) -> generated scenes -> mIoU.

:func:`paper_miou` is what the ablation (``benchmarks/gesco_ablation.py``) and the robustness tests
run: scenes are sent through :class:`~.method.GescoMethod` with ``transmit: paper`` at one "PSNR"
key, the generated images are segmented by the embedded segmenter and scored per image against the
sent label maps (:func:`~.segmenter.per_image_iou`, mean over the classes in either map).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base import OperatingPoint
from .scenes import SceneSet
from .segmenter import Segmenter, load_segmenter, per_image_iou

__all__ = ["PaperTrial", "paper_miou", "score"]


@dataclass
class PaperTrial:
    """``miou [B]`` per image, ``images [B, 3, H, W]`` generated, ``nfe``, ``seconds`` of sampling."""

    miou: torch.Tensor
    images: torch.Tensor
    nfe: int
    seconds: float


def score(images: torch.Tensor, labels: torch.Tensor, segmenter: Segmenter) -> torch.Tensor:
    """``[B]`` mIoU of ``segmenter(images)`` against ``labels``."""
    pred = segmenter.predict(images)
    return torch.nanmean(per_image_iou(pred, labels.long(), segmenter.config.num_classes), dim=1).float()


def paper_miou(scenes: SceneSet, psnr_key: int, model: str = "embedded", fds: bool = True, num_steps: int = 25,
               guidance: float = 2.0, seed: int = 0, segmenter: Segmenter | None = None,
               labels: torch.Tensor | None = None) -> PaperTrial:
    """GESCO in the paper's setting on ``scenes`` at ``psnr_key``.

    :param labels: the maps that are *sent* (default ``scenes.labels``; a test swaps them); the
        score is always against the sent maps
    """
    import time

    from linksim.phy.links import LinkConfig

    from .method import GescoMethod, GescoSettings

    h, w = scenes.images.shape[-2:]
    cfg = GescoSettings(transmit="paper", model=model, fds=fds, num_steps=num_steps, guidance=guidance)
    point = OperatingPoint(csnr_db=float(psnr_key), cbr=None, link=LinkConfig(), image_shape=(h, w), seed=seed)
    cfg.check_point(point)
    m = GescoMethod(cfg, point)
    lab = scenes.labels if labels is None else labels
    inst = scenes.instances if labels is None else lab
    tx = m.encode(scenes.images, None, side={"labels": lab, "instances": inst})
    rx = m.channel(tx, torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1))
    t = time.perf_counter()
    dec = m.decode(rx, torch.Generator().manual_seed(seed + 2))
    seconds = time.perf_counter() - t
    seg = segmenter or load_segmenter()
    return PaperTrial(score(dec.images, lab, seg), dec.images, dec.nfe, seconds)
