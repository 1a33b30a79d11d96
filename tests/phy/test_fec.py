"""CRC and 5G LDPC (Sionna) through our wrappers."""

import pytest
import torch

from linksim.phy.chains import DigitalChain
from linksim.phy.ber import simulate_ber
from linksim.phy.conventions import ebnodb_to_no
from linksim.phy.fec import CRC, LDPC, crc_length
from linksim.phy.links import LinkConfig


class TestCRC:
    @pytest.mark.parametrize("name", ["CRC24A", "CRC16", "CRC6"])
    def test_detects_every_single_flipped_bit(self, name):
        crc = CRC(name, 40)
        g = torch.Generator().manual_seed(0)
        x = crc.encode(torch.randint(0, 2, (1, 40), generator=g).float())
        assert x.shape == (1, 40 + crc_length(name))
        flipped = x.repeat(x.shape[1], 1)
        idx = torch.arange(x.shape[1])
        flipped[idx, idx] = 1 - flipped[idx, idx]  # row i has bit i flipped
        payload, ok = crc.decode(torch.cat([x, flipped]))
        assert ok[0] and not ok[1:].any()
        assert torch.equal(payload[0], x[0, :40])

    def test_unknown(self):
        with pytest.raises(ValueError, match="crc must be one of"):
            crc_length("CRC32")


class TestLDPC:
    def test_noise_free_round_trip_and_rate(self, single_thread):
        code = LDPC(64, 128, num_iter=5)
        g = torch.Generator().manual_seed(1)
        u = torch.randint(0, 2, (4, 3, 64), generator=g).float()
        c = code.encode(u)
        assert c.shape == (4, 3, 128) and code.coderate == 0.5
        assert torch.equal(code.decode(8.0 * (2 * c - 1)), u)

    def test_invalid(self):
        with pytest.raises(ValueError, match="0 < k < n"):
            LDPC(128, 64)

    def test_waterfall_bler_decreases_and_high_snr_is_error_free(self, single_thread):
        # k=64, n=128, QPSK over AWGN, 10 BP iterations; 300 codewords per point. Expected BLER
        # ~0.9, 0.56, 0.27, 0.04 at 0..3 dB: the gaps are > 5 binomial standard deviations.
        chain = DigitalChain(LinkConfig(), 2, 64, 128, num_codewords=25, crc=None, num_iter=10)
        g = torch.Generator().manual_seed(2)
        bler, ber = [], []
        for ebno_db in (0.0, 1.0, 2.0, 3.0):
            r = simulate_ber(chain, ebnodb_to_no(ebno_db, 2, 0.5), g, 12, None, None, 300)
            bler.append(r.bler)
            ber.append(r.ber)
        assert all(a > b for a, b in zip(bler, bler[1:])), bler
        assert bler[0] > 0.7 and 0 < bler[-1] < 0.1, bler
        r = simulate_ber(chain, ebnodb_to_no(6.0, 2, 0.5), g, 8, None, None, 200)
        assert r.block_errors == 0 and r.blocks == 200
        # coding gain: at 3 dB the coded BER (~4e-3) is well below uncoded QPSK's 2.3e-2
        assert ber[-1] < 1e-2
