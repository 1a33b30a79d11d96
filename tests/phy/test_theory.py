"""Closed-form BER/capacity references against textbook values and each other."""

import numpy as np
import pytest

from linksim.phy.theory import awgn_capacity, ber_bpsk_rayleigh, ber_mqam_awgn, ber_mqam_rayleigh


class TestTheory:
    def test_bpsk_awgn_known_values(self):
        # Q(sqrt(2)) at 0 dB, Q(sqrt(2*10^0.96)) ~ 1e-5 at 9.6 dB (classic BPSK table)
        assert ber_mqam_awgn(0.0, 2) == pytest.approx(0.0786496, rel=1e-5)
        assert ber_mqam_awgn(9.6, 2) == pytest.approx(1.0e-5, rel=0.05)
        # QPSK has the same per-bit BER as BPSK at equal Eb/N0
        np.testing.assert_allclose(ber_mqam_awgn([0, 4, 8], 4), ber_mqam_awgn([0, 4, 8], 2))

    def test_16qam_matches_measured_reference(self):
        # reference/phy_codecs_metrics.md: Sionna measured 5.84e-2 at 4 dB, 9.18e-3 at 8 dB
        assert ber_mqam_awgn(4.0, 16) == pytest.approx(5.84e-2, rel=0.02)
        assert ber_mqam_awgn(8.0, 16) == pytest.approx(9.18e-3, rel=0.02)

    def test_rayleigh_integration_matches_closed_form(self):
        e = np.array([0.0, 10.0, 20.0])
        np.testing.assert_allclose(ber_mqam_rayleigh(e, 2), ber_bpsk_rayleigh(e), rtol=1e-6)
        # high-SNR slope: BER ~ 1/(4 gamma)
        assert ber_bpsk_rayleigh(30.0) == pytest.approx(1 / (4 * 1000), rel=0.01)
        assert ber_mqam_rayleigh(10.0, 16) > ber_mqam_rayleigh(10.0, 4)

    def test_capacity(self):
        np.testing.assert_allclose(awgn_capacity([0.0, 1.0, 3.0]), [0.0, 1.0, 2.0])
        with pytest.raises(ValueError, match="linear"):
            awgn_capacity(-1.0)

    def test_invalid_order(self):
        with pytest.raises(ValueError, match="square QAM"):
            ber_mqam_awgn(0.0, 8)
