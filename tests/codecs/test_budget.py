"""Tests of the bit budget arithmetic and of fitting a codec's quality to it."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
import torch

from linksim.codecs.classical import SizeCache, bit_budget, fit_quality, get_codec, ideal_budget
from linksim.codecs.classical.base import SourceCodec
from linksim.codecs.classical.budget import num_channel_symbols, size_table
from linksim.data import load_images


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return load_images("embedded", size=64, limit=1).images[0]


class TestBitBudget:
    def test_known_value(self):
        # 64x64, CBR 1/24 -> 512 symbols; 16-QAM -> 2048 coded bits -> 2 codewords of n=1024;
        # 2 * (512 - 24) - 32 = 944
        assert num_channel_symbols("1/24", 64, 64) == 512
        assert bit_budget("1/24", 64, 64, 4, 512, 1024) == 944

    @pytest.mark.parametrize("cbr", ["1/48", "1/24", "1/6", Fraction(1, 12), 1 / 24, 0.1])
    @pytest.mark.parametrize("bps,k,n", [(2, 512, 1024), (4, 1000, 1500), (6, 3840, 8448)])
    def test_matches_design_formula(self, cbr, bps, k, n):
        h, w = 96, 128
        rho = Fraction(cbr) if not isinstance(cbr, float) else Fraction(cbr).limit_denominator(10**6)
        expected = math.floor(rho * 3 * h * w * bps / n) * k - math.floor(rho * 3 * h * w * bps / n) * 24 - 32
        assert bit_budget(cbr, h, w, bps, k, n, crc_bits=24, header_bits=32) == max(expected, 0)

    def test_float_cbr_is_exact(self):
        # 1/24 as a float must not lose a symbol to rounding (512 symbols -> 2 codewords exactly)
        assert bit_budget(1 / 24, 64, 64, 2, 512, 1024, crc_bits=0, header_bits=0) == 512

    def test_too_small_is_zero(self):
        assert bit_budget("1/96", 16, 16, 2, 512, 1024) == 0

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="cbr"):
            bit_budget("a/b", 64, 64, 2, 512, 1024)
        with pytest.raises(ValueError, match="invalid link parameters"):
            bit_budget("1/24", 64, 64, 2, 2048, 1024)

    def test_ideal_budget_is_capacity(self):
        # 512 channel uses at 15 dB: 512 * log2(1 + 10^1.5)
        assert ideal_budget("1/24", 64, 64, 10**1.5) == pytest.approx(512 * math.log2(1 + 10**1.5))
        # the coded budget never beats capacity when rate <= capacity per symbol
        assert bit_budget("1/24", 64, 64, 4, 512, 1024, 0, 0) <= ideal_budget("1/24", 64, 64, 10**1.5)


@pytest.mark.parametrize("name", ["hevc", "jpeg", "webp"])
class TestFitQuality:
    def test_best_quality_that_fits(self, name, image):
        codec = get_codec(name)
        cache = SizeCache()
        table = size_table(codec, image, cache)
        sizes = [table[q] for q in codec.qualities]
        for budget in (8 * sizes[len(sizes) // 4] + 5, 8 * sizes[len(sizes) // 2], 12000):
            res = fit_quality(codec, image, budget, cache)
            assert res is not None
            assert res.bits == 8 * len(res.payload) <= budget
            assert res.payload == codec.encode(image, res.quality)
            i = codec.qualities.index(res.quality)
            if i + 1 < len(sizes):
                assert 8 * sizes[i + 1] > budget  # the next better quality does not fit
            # the documented guarantee for every codec: none of the `scan` = 2 next better
            # qualities fits; and where the sizes grow monotonically, nothing better fits at all
            assert all(8 * s > budget for s in sizes[i + 1 : i + 3])
            if sizes == sorted(sizes):
                assert all(8 * s > budget for s in sizes[i + 1:])

    def test_outage(self, name, image):
        codec = get_codec(name)
        smallest = len(codec.encode(image, codec.qualities[0]))
        assert fit_quality(codec, image, 8 * smallest - 1) is None
        assert fit_quality(codec, image, 8 * smallest).quality == codec.qualities[0]

    def test_everything_fits(self, name, image):
        codec = get_codec(name)
        assert fit_quality(codec, image, 10**7).quality == codec.qualities[-1]

    def test_size_grows_with_quality(self, name, image):
        # the premise of the bisection, checked on the grid (allowing rare small reversals)
        codec = get_codec(name)
        sizes = list(size_table(codec, image).values())
        reversals = [(a, b) for a, b in zip(sizes, sizes[1:]) if b < a]
        assert sizes[-1] > 3 * sizes[0]
        assert len(reversals) <= len(sizes) // 10
        assert all(b >= 0.97 * a for a, b in reversals)


class _ToyCodec(SourceCodec):
    """Sizes from a fixed table (with a non-monotone spot) to test the search itself."""

    name = "toy"
    qualities = tuple(range(10))
    sizes = (10, 20, 30, 45, 40, 60, 70, 80, 90, 100)  # 45 > 40: a reversal at q=3/4

    description = "toy"

    def _encode_uint8(self, arr, quality):
        return bytes(self.sizes[quality])

    def _decode_uint8(self, payload, height, width):
        raise NotImplementedError


class TestSearch:
    @pytest.mark.parametrize("budget_bytes,expected", [(9, None), (10, 0), (42, 4), (44, 4),
                                                       (45, 4), (59, 4), (60, 5), (100, 9)])
    def test_against_exhaustive(self, image, budget_bytes, expected):
        res = fit_quality(_ToyCodec(), image, 8 * budget_bytes)
        assert (res.quality if res else None) == expected

    def test_cache_avoids_encoding_and_persists(self, image, tmp_path):
        codec = get_codec("jpeg")
        path = tmp_path / "sizes.json"
        first = fit_quality(codec, image, 4000, SizeCache(path))
        assert first.num_encodes >= 5
        on_disk = json.loads(path.read_text())
        (key,) = on_disk
        assert key.endswith("JPEGCodec()") and len(on_disk[key]) == first.num_encodes
        again = fit_quality(codec, image, 4000, SizeCache(path))
        assert again.quality == first.quality and again.payload == first.payload
        assert again.num_encodes == 1  # only the chosen payload is re-encoded
