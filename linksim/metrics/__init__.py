"""Image quality metrics: per-image (PSNR, MS-SSIM, LPIPS, DISTS) and per-set (FID, KID).

:data:`BUILTIN_METRICS` lists ``(name, factory, description)``; the engine's registry
(``linksim/registry.py``) is filled from it. ``factory(device, allow_download=None) -> Metric`` and
raises :class:`linksim.errors.WeightsUnavailable` when a weight file is absent.
:func:`build_metrics` turns the names of a scenario into metric objects and collects the
unavailable ones (DESIGN.md §8: empty cells, one warning each, listed in ``run.json``).

>>> available, unavailable = build_metrics(["psnr", "ms_ssim"], "cpu")
>>> [m.name for m in available]
['psnr', 'ms_ssim']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial

import torch

from linksim.errors import WeightsUnavailable
from linksim.metrics.base import PER_IMAGE, PER_SET, Metric, PerImageMetric, SetMetric
from linksim.metrics.distribution import FID, KID, InceptionFeatures, fid_factory, inception_features, kid_factory
from linksim.metrics.perceptual import DISTS, LPIPS, dists_from_weights, lpips_from_weights
from linksim.metrics.miou import MIoU, miou_factory
from linksim.metrics.pixel import MSSSIM, PSNR, ms_ssim, ms_ssim_variant, psnr

__all__ = [
    "BUILTIN_METRICS",
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


#: (name, factory, description) of every built-in metric, in the order of results columns.
BUILTIN_METRICS: list[tuple[str, Callable[..., Metric], str]] = [
    ("psnr", _no_weights(PSNR), "PSNR in dB, data range 1, per image"),
    ("ms_ssim", _no_weights(MSSSIM), "MS-SSIM (fewer scales below 176 px; variant stated in run.json)"),
    ("lpips", partial(lpips_from_weights, net="alex"), "LPIPS v0.1, AlexNet backbone (needs alexnet-owt-7be5be79.pth)"),
    ("lpips_vgg", partial(lpips_from_weights, net="vgg"), "LPIPS v0.1, VGG16 backbone (needs vgg16-397923af.pth)"),
    ("dists", dists_from_weights, "DISTS, VGG16 backbone (needs vgg16-397923af.pth)"),
    ("fid", fid_factory, "FID, Inception 2015-12-05 pool features (per set; standard file or fid-helper port)"),
    ("kid", kid_factory, "KID, unbiased cubic-kernel MMD^2 on Inception features (per set)"),
    ("miou", miou_factory, "mIoU of the embedded scene segmenter on the output vs the sent labels (labelled data)"),
]

_FACTORIES = {name: factory for name, factory, _ in BUILTIN_METRICS}
#: the built-in set metrics (one value per method x point, from all its images at once)
SET_METRICS = ("fid", "kid")


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
    :param factories: name -> factory (default: :data:`BUILTIN_METRICS`; the engine passes its registry)
    :output available: metric objects in the order of ``names``
    :output unavailable: name -> reason (one :class:`MetricUnavailableWarning` each)
    :raises ValueError: an unknown name (the scenario validator reports it first)
    """
    factories = _FACTORIES if factories is None else factories
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
