"""HARQ soft combining (linksim.phy.harq) against theory.

Chase combining of k copies over AWGN: for QPSK (Gray, APP demapping) the bit LLR is linear in the
received sample, so the sum of k copies' LLRs has exactly the distribution of one copy at k times
the SNR. The BLER curve after k combined copies is the single-copy curve shifted by
-10·log10(k) dB. Incremental redundancy sends new parity instead of repeats: at the same SNR and
max_tx it leaves fewer codewords in error than chase (a lower-rate code beats a repetition).
"""

import math

import pytest
import torch

from linksim.phy.chains import DigitalChain
from linksim.phy.conventions import csnr_db_to_no
from linksim.phy.harq import harq_transmit, rv_sequence
from linksim.phy.links import LinkConfig

C = 16


@pytest.fixture(scope="module")
def chain():
    return DigitalChain(LinkConfig(kind="awgn"), 2, 64, 128, num_codewords=C, crc="CRC24A")


def _run(chain, csnr_db, mode, max_tx, seed, B=30):
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (B, chain.num_info_bits), generator=g).float()

    def draw(t, used):
        gt = torch.Generator().manual_seed(1000 * seed + t)
        return chain.generate(B, gt), gt

    return harq_transmit(chain, bits, csnr_db_to_no(csnr_db), draw, mode, max_tx)


def _bler(res) -> float:
    return float((~res.crc_ok).float().mean())


def test_chase_of_k_copies_shifts_the_bler_curve_by_10log10k(chain):
    s0 = 1.0  # single-copy BLER ~ 0.5 here (n = 128, r = 1/2)
    single = {s: _bler(_run(chain, s, "chase", 1, seed=1)) for s in (s0 - 0.5, s0, s0 + 0.5)}
    # local slope of ln BLER per dB (central difference over +-0.5 dB), from the single-copy curve
    slope = (math.log(single[s0 + 0.5]) - math.log(single[s0 - 0.5])) / 1.0
    assert slope < -0.5  # a waterfall, so that a BLER difference maps to a dB difference
    for k in (2, 4):
        res = _run(chain, s0 - 10 * math.log10(k), "chase", k, seed=2 + k)
        shift_error_db = (math.log(_bler(res)) - math.log(single[s0])) / slope
        # tolerance 0.3 dB: two binomial estimates of 480 codewords at BLER ~0.5 give ~0.1 dB std;
        # early stopping (a codeword that decoded with fewer copies is not resent) changes ~nothing
        assert abs(shift_error_db) < 0.3, (k, shift_error_db)
        assert int(res.transmissions.max()) <= k and int(res.transmissions.min()) >= 1


def test_ir_decodes_at_lower_snr_than_chase_for_the_same_max_tx(chain):
    csnr = -2.0  # chase with 2 copies ~ single copy at +1 dB: BLER ~ 0.5
    chase, ir = _run(chain, csnr, "chase", 2, seed=7, B=16), _run(chain, csnr, "ir", 2, seed=7, B=16)
    p_chase, p_ir = _bler(chase), _bler(ir)
    n = chase.crc_ok.numel()
    sigma = math.sqrt(p_chase * (1 - p_chase) / n + p_ir * (1 - p_ir) / n)
    assert p_chase - p_ir > 4 * sigma, (p_chase, p_ir)
    # the first transmission is the same in both modes (RV 0, same draws)
    assert torch.equal(chase.first_ok, ir.first_ok)
    # only NACKed codewords were resent
    assert torch.equal(ir.transmissions, 1 + (~ir.first_ok).long())


def test_rv_sequences_and_bad_mode():
    assert rv_sequence("ir", 4) == (0, 2, 3, 1) and rv_sequence("chase", 2) == (0, 0)
    with pytest.raises(ValueError, match="harq mode"):
        rv_sequence("hybrid", 2)


def test_each_round_is_told_the_airtime_of_the_rounds_before_it(chain):
    """``draw(t, used)``: example 0 at -10 dB fails every round (all C codewords resent), example 1
    at 30 dB passes the first: before round t, example 0 has used t whole transmissions and
    example 1 one."""
    bits = torch.randint(0, 2, (2, chain.num_info_bits), generator=torch.Generator().manual_seed(0)).float()
    seen = []

    def draw(t, used):
        seen.append(used.tolist())
        g = torch.Generator().manual_seed(t)
        return chain.generate(2, g), g

    no = torch.tensor([csnr_db_to_no(-10.0), csnr_db_to_no(30.0)])
    res = harq_transmit(chain, bits, no, draw, "chase", 4)
    assert seen == [[0.0, 0.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    assert res.transmissions[0].tolist() == [4] * C and res.transmissions[1].tolist() == [1] * C
