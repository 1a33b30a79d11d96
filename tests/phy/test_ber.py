"""Monte-Carlo BER of uncoded chains against closed forms, and simulate_ber's stopping rules.

Tolerance: the measured error count must lie within 4 standard deviations of the binomial
count predicted by theory. Bits of one symbol are not independent (bits on the same PAM axis of a
16-QAM symbol tend to fail together), so the variance uses the number of PAM axes
(``bits / (bps / 2)``), an upper bound on the spread; for BPSK/QPSK the bits are independent.
"""

import math

import pytest
import torch

from linksim.phy.ber import BerResult, simulate_ber
from linksim.phy.chains import DigitalChain
from linksim.phy.conventions import ebnodb_to_no
from linksim.phy.links import LinkConfig
from linksim.phy.theory import ber_bpsk_rayleigh, ber_mqam_awgn


def _within_band(r: BerResult, p: float, bits_per_trial: int) -> bool:
    trials = r.bits / bits_per_trial
    sigma = bits_per_trial * math.sqrt(trials * p * (1 - p))
    return abs(r.bit_errors - r.bits * p) <= 4 * sigma


class TestUncodedBer:
    @pytest.mark.parametrize(
        "bps, ebno_db",
        [(2, 0.0), (2, 3.0), (2, 6.0), (4, 2.0), (4, 6.0), (4, 9.0)],
    )
    def test_awgn_matches_closed_form(self, bps, ebno_db):
        chain = DigitalChain(LinkConfig(kind="awgn"), bps, None, None, num_codewords=4, crc=None,
                             block_bits=1024)
        g = torch.Generator().manual_seed(int(10 * ebno_db) + bps)
        r = simulate_ber(chain, ebnodb_to_no(ebno_db, bps), g, 8, 300, None, 600)
        p = float(ber_mqam_awgn(ebno_db, 2**bps))
        assert r.bit_errors >= 200, r
        assert _within_band(r, p, max(1, bps // 2)), (r.ber, p)

    @pytest.mark.parametrize("ebno_db", [0.0, 5.0, 10.0])
    def test_bpsk_rayleigh_matches_closed_form(self, ebno_db):
        # coherence 1: an independent fade per symbol, so bit errors are independent
        cfg = LinkConfig(kind="rayleigh", coherence_symbols=1)
        chain = DigitalChain(cfg, 1, None, None, num_codewords=4, crc=None, block_bits=1024)
        g = torch.Generator().manual_seed(int(ebno_db) + 100)
        r = simulate_ber(chain, ebnodb_to_no(ebno_db, 1), g, 8, 300, None, 600)
        p = float(ber_bpsk_rayleigh(ebno_db))
        assert r.bit_errors >= 200, r
        assert _within_band(r, p, 1), (r.ber, p)

    def test_rayleigh_is_worse_than_awgn(self):
        # 10 dB: AWGN BPSK 3.9e-6 vs Rayleigh 2.3e-2; a chain that ignored fading would fail
        assert ber_bpsk_rayleigh(10.0) > 1000 * ber_mqam_awgn(10.0, 2)


class TestSimulateBer:
    def _chain(self):
        return DigitalChain(LinkConfig(), 2, None, None, num_codewords=2, crc=None, block_bits=100)

    def test_stops_on_bit_error_target(self):
        seen = []
        r = simulate_ber(self._chain(), 1.0, torch.Generator().manual_seed(0), 4, 50, None, 10_000,
                         progress=seen.append)
        assert r.stopped_early and r.bit_errors >= 50 and r.blocks < 10_000
        assert len(seen) == r.blocks // 8 and seen[-1].bits == r.bits
        assert r.ber == r.bit_errors / r.bits and r.bits == r.blocks * 100

    def test_stops_on_block_error_target_and_max_blocks(self):
        r = simulate_ber(self._chain(), 1.0, torch.Generator().manual_seed(0), 4, None, 3, 10_000)
        assert r.stopped_early and 3 <= r.block_errors <= 8
        r = simulate_ber(self._chain(), 1e-4, torch.Generator().manual_seed(0), 4, 10, 10, 20)
        assert not r.stopped_early and r.blocks == 24 and r.bit_errors == 0 and r.bler == 0.0

    def test_reproducible(self):
        a = simulate_ber(self._chain(), 0.5, torch.Generator().manual_seed(9), 4, None, None, 40)
        b = simulate_ber(self._chain(), 0.5, torch.Generator().manual_seed(9), 4, None, None, 40)
        assert a == b and a.bit_errors > 0
