"""Learned perceptual metrics: LPIPS (``lpips`` package, the authors' code) and DISTS (torchmetrics).

Both wheels ship only the small heads (LPIPS linear layers, DISTS alpha/beta). The ImageNet
backbones (AlexNet, VGG16) are resolved by :mod:`linksim.weights` and loaded explicitly here, so
that a missing backbone is an error instead of a silent download attempt or a random network.

The metric classes take an already built network; :func:`lpips_from_weights` and
:func:`dists_from_weights` are the only ways the registry builds them, from real weight files.
Tests build the same networks with random backbones and hand them in; such a network is never
registered under a metric name.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from unittest import mock

import torch
from torch import Tensor, nn

from linksim.metrics.base import PerImageMetric
from linksim.weights import resolve

_BACKBONE_WEIGHTS = {"alex": "alexnet", "vgg": "vgg16"}
_HEAD_WEIGHTS = {"alex": "lpips_alex_head", "vgg": "lpips_vgg_head"}


def _load_state_dict(path) -> dict[str, Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_sliced_backbone(slices: nn.Module, features_state: dict[str, Tensor]) -> None:
    """Load torchvision ``features.<i>.*`` weights into a network split into ``slice<k>.<i>`` parts.

    Both LPIPS (``lpips.pretrained_networks``) and DISTS (``stage<k>.<i>``) keep torchvision's layer
    index ``i`` as the child name, so the mapping is exact; every ``features.*`` tensor must be used.

    :raises ValueError: a tensor is missing or left over (wrong file for this backbone)
    """
    used = set()
    for part in slices.children():
        for idx, layer in part.named_children():
            prefix = f"features.{idx}."
            sub = {k[len(prefix) :]: v for k, v in features_state.items() if k.startswith(prefix)}
            if sub or any(True for _ in layer.parameters(recurse=False)):
                layer.load_state_dict(sub, strict=True)
                used.update(prefix + k for k in sub)
    unused = {k for k in features_state if k.startswith("features.")} - used
    if unused:
        raise ValueError(f"backbone weights not used (wrong file?): {sorted(unused)[:4]} ...")


def build_lpips_network(net: str = "alex", backbone_state: dict[str, Tensor] | None = None) -> nn.Module:
    """``lpips.LPIPS`` (v0.1, linear heads from the wheel) with the given backbone weights.

    :param net: ``alex`` or ``vgg``
    :param backbone_state: torchvision ImageNet state dict of the backbone; ``None`` leaves the
        backbone randomly initialised (tests only)
    """
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecated `pretrained=` inside lpips
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    if backbone_state is not None:
        load_sliced_backbone(model.net, backbone_state)
    return model.eval().requires_grad_(False)


def build_dists_network(backbone_state: dict[str, Tensor] | None = None) -> nn.Module:
    """torchmetrics' ``DISTSNetwork`` (alpha/beta from the wheel) with the given VGG16 weights.

    torchmetrics builds VGG16 with ``weights=VGG16_Weights.DEFAULT``, which downloads; we hand it an
    uninitialised VGG16 convolutional part instead (DISTS uses only ``.features``; skipping the
    102 M-parameter classifier saves seconds) and load the resolved file ourselves.
    """
    from torchmetrics.functional.image import dists as tm_dists
    from torchvision.models.vgg import cfgs, make_layers

    def vgg16_features_only(weights=None):
        return SimpleNamespace(features=make_layers(cfgs["D"], batch_norm=False))

    with mock.patch.object(tm_dists, "vgg16", vgg16_features_only):
        model = tm_dists.DISTSNetwork(load_weights=True)
    if backbone_state is not None:
        parts = nn.Sequential(model.stage1, model.stage2, model.stage3, model.stage4, model.stage5)
        load_sliced_backbone(parts, backbone_state)
    return model.eval().requires_grad_(False)


class LPIPS(PerImageMetric):
    """LPIPS v0.1 [Zhang et al. 2018], lower is better.

    :param network: an ``lpips.LPIPS`` module (see :func:`lpips_from_weights`)
    :param net: backbone name, for the metric name and source
    :input x, y: [B, 3, H, W] float in [0, 1] (scaled to [-1, 1] inside)
    :output lpips: [B] >= 0, 0 for identical images
    """

    higher_is_better = False

    def __init__(self, network: nn.Module, net: str = "alex", device="cpu", source: str = ""):
        super().__init__(device)
        self.name = "lpips" if net == "alex" else f"lpips_{net}"
        self.needs_weights = (_BACKBONE_WEIGHTS[net], _HEAD_WEIGHTS[net])
        self.network = network.to(self.device)
        self.source = source or f"lpips {net} v0.1 (backbone not from a known file)"

    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self.network(x, y, normalize=True).reshape(-1)


class DISTS(PerImageMetric):
    """DISTS [Ding et al. 2020], lower is better.

    :param network: a torchmetrics ``DISTSNetwork`` (see :func:`dists_from_weights`)
    :input x, y: [B, 3, H, W] float in [0, 1]
    :output dists: [B], 0 for identical images
    """

    name = "dists"
    higher_is_better = False
    needs_weights = ("vgg16", "dists_head")

    def __init__(self, network: nn.Module, device="cpu", source: str = ""):
        super().__init__(device)
        self.network = network.to(self.device)
        self.source = source or "torchmetrics DISTS (backbone not from a known file)"

    def compute_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self.network(y, x).reshape(-1)


def lpips_from_weights(device="cpu", net: str = "alex", allow_download: bool | None = None) -> LPIPS:
    """LPIPS with the ImageNet backbone resolved by :func:`linksim.weights.resolve`.

    :raises WeightsUnavailable: the backbone file is absent (offline) or corrupt
    """
    path = resolve(_BACKBONE_WEIGHTS[net], allow_download=allow_download)
    resolve(_HEAD_WEIGHTS[net])
    network = build_lpips_network(net, _load_state_dict(path))
    return LPIPS(network, net, device, source=f"lpips 0.1.4 v0.1 {net}; backbone {path.name}")


def lpips_alex_factory(device="cpu", allow_download: bool | None = None) -> LPIPS:
    """``lpips``: LPIPS v0.1 with the AlexNet backbone (:func:`lpips_from_weights`)."""
    return lpips_from_weights(device, net="alex", allow_download=allow_download)


def lpips_vgg_factory(device="cpu", allow_download: bool | None = None) -> LPIPS:
    """``lpips_vgg``: LPIPS v0.1 with the VGG16 backbone (:func:`lpips_from_weights`)."""
    return lpips_from_weights(device, net="vgg", allow_download=allow_download)


def dists_from_weights(device="cpu", allow_download: bool | None = None) -> DISTS:
    """DISTS with the VGG16 backbone resolved by :func:`linksim.weights.resolve`.

    :raises WeightsUnavailable: the backbone file is absent (offline) or corrupt
    """
    path = resolve("vgg16", allow_download=allow_download)
    resolve("dists_head")
    network = build_dists_network(_load_state_dict(path))
    return DISTS(network, device, source=f"torchmetrics DISTS (alpha/beta from the wheel); backbone {path.name}")
