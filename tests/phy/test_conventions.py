"""DESIGN.md §3: CSNR <-> N0 and Eb/N0 <-> CSNR arithmetic, for floats and tensors."""

import math

import pytest
import torch

from linksim.phy.conventions import (
    csnr_db_to_ebno_db,
    csnr_db_to_no,
    ebno_db_to_csnr_db,
    ebnodb_to_no,
    no_to_csnr_db,
)


class TestConventions:
    def test_csnr_to_no_known_values(self):
        assert csnr_db_to_no(0.0) == pytest.approx(1.0)
        assert csnr_db_to_no(10.0) == pytest.approx(0.1)
        assert csnr_db_to_no(-3.0) == pytest.approx(10 ** 0.3)
        assert no_to_csnr_db(0.01) == pytest.approx(20.0)

    def test_tensor_round_trip_keeps_shape_and_dtype(self):
        c = torch.tensor([-5.0, 0.0, 7.5, 30.0], dtype=torch.float64)
        no = csnr_db_to_no(c)
        assert no.shape == c.shape and no.dtype == torch.float64
        torch.testing.assert_close(no_to_csnr_db(no), c)

    def test_ebno_csnr_offset_is_10log10_bps_rate(self):
        # 16-QAM rate 1/2: 2 info bits per symbol -> CSNR = Eb/N0 + 3.0103 dB
        assert ebno_db_to_csnr_db(4.0, 4, 0.5) == pytest.approx(4.0 + 10 * math.log10(2))
        assert csnr_db_to_ebno_db(10.0, 6, 1 / 3) == pytest.approx(10.0 - 10 * math.log10(2))
        # BPSK uncoded: Eb = Es
        assert ebno_db_to_csnr_db(3.0, 1, 1.0) == pytest.approx(3.0)
        t = torch.tensor([1.0, 2.0])
        torch.testing.assert_close(csnr_db_to_ebno_db(ebno_db_to_csnr_db(t, 4, 0.75), 4, 0.75), t)

    def test_ebnodb_to_no_matches_definition(self):
        # Es = 1 = Eb * bps * r  ->  N0 = Eb / (Eb/N0) = 1 / (bps r 10^(ebno/10))
        assert ebnodb_to_no(6.0, 4, 0.5) == pytest.approx(1 / (2 * 10 ** 0.6))
        assert ebnodb_to_no(0.0, 2, 1.0) == pytest.approx(0.5)

    def test_invalid_rate_raises(self):
        with pytest.raises(ValueError, match="coderate"):
            ebnodb_to_no(0.0, 2, 1.5)
        with pytest.raises(ValueError, match="bits_per_symbol"):
            ebno_db_to_csnr_db(0.0, 0, 0.5)

    def test_rate_edges_and_defaults(self):
        """The accepted rate range is exactly (0, 1] and bits_per_symbol > 0; uncoded by default."""
        for bad in (0.0, -0.5, 1.0000001):
            with pytest.raises(ValueError, match="coderate"):
                csnr_db_to_ebno_db(0.0, 2, bad)
        for bad in (0, -2):
            with pytest.raises(ValueError, match="bits_per_symbol"):
                ebnodb_to_no(0.0, bad, 0.5)
        assert ebno_db_to_csnr_db(0.0, 2, 1.0) == pytest.approx(10 * math.log10(2))  # rate 1 is allowed
        # default coderate 1: 64-QAM uncoded, Eb/N0 = CSNR - 10 log10(6)
        assert ebno_db_to_csnr_db(1.0, 6) == pytest.approx(1.0 + 10 * math.log10(6))
        assert csnr_db_to_ebno_db(1.0, 6) == pytest.approx(1.0 - 10 * math.log10(6))
        assert ebnodb_to_no(0.0, 4) == pytest.approx(0.25)
        # returns floats for floats
        assert type(ebnodb_to_no(3.0, 2, 0.5)) is float and type(no_to_csnr_db(0.5)) is float
