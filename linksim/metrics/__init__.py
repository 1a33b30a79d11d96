"""Image quality metrics: per-image (PSNR, MS-SSIM, LPIPS, DISTS) and per-set (FID, KID).

The registry (``linksim.registry.BUILTINS[METRICS]``) lists ``(name, factory, description)`` of every
built-in metric. ``factory(device, allow_download=None) -> Metric`` and raises :class:`linksim.errors.WeightsUnavailable` when a weight file is absent.
:func:`build_metrics` turns the names of a scenario into metric objects and collects the
unavailable ones (DESIGN.md §8: empty cells, one warning each, listed in ``run.json``).

>>> available, unavailable = build_metrics(["psnr", "ms_ssim"], "cpu")
>>> [m.name for m in available]
['psnr', 'ms_ssim']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from linksim.configs import SET_METRIC_MIN_SAMPLES
from linksim.errors import WeightsUnavailable
from linksim.metrics.base import PER_IMAGE, PER_SET, Metric, PerImageMetric, SetMetric
from linksim.metrics.distribution import FID, KID, InceptionFeatures, inception_features
from linksim.metrics.perceptual import DISTS, LPIPS
from linksim.metrics.miou import MIoU
from linksim.metrics.pixel import MSSSIM, PSNR, ms_ssim, ms_ssim_variant, psnr

__all__ = [
    "DISTS",
    "FID",
    "KID",
    "LPIPS",
    "MIoU",
    "MSSSIM",
    "PER_IMAGE",
    "PER_SET",
    "PSNR",
    "InceptionFeatures",
    "Metric",
    "MetricUnavailableWarning",
    "PerImageMetric",
    "SetMetric",
    "build_metrics",
    "ms_ssim_factory",
    "psnr_factory",
    "inception_features",
    "ms_ssim",
    "ms_ssim_variant",
    "psnr",
]


class MetricUnavailableWarning(UserWarning):
    """A requested metric cannot be computed (its weights are absent); its cells stay empty."""


def _no_weights(cls):
    def factory(device="cpu", allow_download: bool | None = None):
        return cls(device)

    return factory


#: factories of the metrics that need no weight file (the table of built-in metrics, with their
#: descriptions, is ``linksim.registry.BUILTINS[METRICS]``)
psnr_factory = _no_weights(PSNR)
ms_ssim_factory = _no_weights(MSSSIM)
#: the built-in set metrics (one value per method x point, from all its images at once)
SET_METRICS = tuple(SET_METRIC_MIN_SAMPLES)


def build_metrics(
    names: Sequence[str],
    device: str | torch.device = "cpu",
    strict: bool = False,
    allow_download: bool | None = None,
    factories: dict[str, Callable[..., Metric]] | None = None,
) -> tuple[list[Metric], dict[str, str]]:
    """Build the named metrics; report those whose weights are absent instead of substituting.

    :param names: metric names (scenario ``metrics:``)
    :param strict: raise :class:`WeightsUnavailable` instead of skipping (CLI ``--strict-metrics``)
    :param allow_download: passed to :func:`linksim.weights.resolve`
    :param factories: name -> factory (default: the registered metrics, :data:`linksim.registry.METRICS`)
    :output available: metric objects in the order of ``names``
    :output unavailable: name -> reason (one :class:`MetricUnavailableWarning` each)
    :raises ValueError: an unknown name (the scenario validator reports it first)
    """
    if factories is None:
        from linksim.registry import METRICS

        factories = {n: METRICS.get(n) for n in METRICS.names(sort=False)}
    available: list[Metric] = []
    unavailable: dict[str, str] = {}
    for name in dict.fromkeys(names):  # de-duplicate, keep order
        if name not in factories:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(factories)}")
        try:
            available.append(factories[name](device=device, allow_download=allow_download))
        except WeightsUnavailable as err:
            if strict:
                raise
            unavailable[name] = str(err)
            warnings.warn(f"metric '{name}' unavailable, its cells stay empty: {err}", MetricUnavailableWarning, stacklevel=2)
    return available, unavailable
