"""The metric interface shared by per-image and per-set metrics.

A per-image metric maps a batch of reference/reconstruction pairs to one value per image; a per-set
metric (FID, KID) accumulates features over a whole sweep point and returns one number. Both carry
``name`` (the results column), ``kind``, ``needs_weights`` (names in :data:`linksim.weights.KNOWN`)
and ``source`` (which implementation and weights produced the numbers — written to ``run.json`` and
the report, so a number is never separated from what computed it).
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

PER_IMAGE = "per_image"
PER_SET = "per_set"


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3 or x.shape != y.shape:
        raise ValueError(f"metrics expect two [B, 3, H, W] images of equal shape; got {tuple(x.shape)} and {tuple(y.shape)}")


class Metric(abc.ABC):
    """Base of all metrics.

    :param device: where the computation runs; inputs are moved there and results come back on the
        inputs' device
    """

    name: str = ""
    kind: str = PER_IMAGE
    needs_weights: tuple[str, ...] = ()
    higher_is_better: bool = True
    #: implementation and weights behind the numbers (library, backbone file, variant)
    source: str = ""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def describe(self) -> str:
        """One line for ``run.json`` / the report: name, direction and source."""
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return f"{self.name} ({arrow}): {self.source}"


class PerImageMetric(Metric):
    """A metric with one value per image pair.

    :input x: [B, 3, H, W] float reference images in [0, 1]
    :input y: [B, 3, H, W] float reconstructions in [0, 1]
    :output value: [B] float32 on ``x.device``
    """

    kind = PER_IMAGE
    #: the metric needs the labels of labelled sources: the engine calls ``metric(x, y, side=...)``,
    #: which returns ``([B] values, {column: [B] list})`` for the columns of ``extra_columns``
    uses_side: bool = False
    extra_columns: tuple[str, ...] = ()

    @torch.no_grad()
    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        _check_pair(x, y)
        out = self.compute_batch(x.to(self.device, torch.float32), y.to(self.device, torch.float32))
        return out.reshape(x.shape[0]).to(x.device, torch.float32)

    @abc.abstractmethod
    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:
        """The metric on tensors already on ``self.device``; returns [B]."""


class SetMetric(Metric):
    """A metric of two image sets (distributions), accumulated batch by batch.

    ``update(real, fake)`` adds a batch of references and reconstructions (both [B, 3, H, W] in
    [0, 1]; the two sets may differ in size); ``compute()`` returns a 0-d float64 tensor;
    ``extra()`` returns further summary columns (e.g. ``kid_std``); ``reset()`` clears the state.
    """

    kind = PER_SET
    #: fewest samples (images x draws) per point for a meaningful value; below it the engine
    #: reports the metric unavailable for that point (with the reason), never a number
    min_samples = 2

    @abc.abstractmethod
    def update(self, real: Tensor, fake: Tensor) -> None: ...

    @abc.abstractmethod
    def compute(self) -> Tensor: ...

    @abc.abstractmethod
    def reset(self) -> None: ...

    def extra(self) -> dict[str, float]:
        return {}
