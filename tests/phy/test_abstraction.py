"""Sionna SYS PHY abstraction and OLLA (linksim.phy.abstraction) against independent measurements.

* At points of Sionna's BLER tables (5G LDPC, AWGN), the abstraction's codeword error rate agrees
  with a bit-true simulation of the same code (our DigitalChain: CRC24A inside k, 38.212 rate
  matching, 20 BP iterations, APP demapping) within a binomial interval.
* Outer-loop link adaptation: over a long run on the abstract PHY its NACK rate converges to the
  target (the offset walk is bounded, so the fraction of NACKs tends to Δdown / (Δup + Δdown) = t).
"""

import math

import pytest
import torch

from linksim.phy.abstraction import NR_TABLE1, OuterLoop, PhyAbstraction, nr_mcs_index
from linksim.phy.ber import simulate_ber
from linksim.phy.chains import DigitalChain
from linksim.phy.conventions import csnr_db_to_no
from linksim.phy.links import LinkConfig

# (MCS index of 38.214 table 1, code block size, SNR [dB] of a table grid point with 0.2 < BLER < 0.6)
TABLE_POINTS = [(4, 100, -1.4285714285714284), (13, 100, 5.714285714285715)]


def test_table1_mapping():
    assert NR_TABLE1[13] == (4, 490) and nr_mcs_index(6, 948) == 28 and nr_mcs_index(2, 205) is None
    assert min(NR_TABLE1) == 3  # rates below 1/5 (indices 0..2) are not realisable with 5G LDPC here


def test_table1_is_sionnas():
    """The written-out table (torch-free, for the validator) equals Sionna's 38.214 decoder, index by index."""
    import torch
    from sionna.phy.nr.utils import MCSDecoderNR

    idx = torch.arange(29, dtype=torch.int32)
    ones = torch.ones(29, dtype=torch.int32)
    mod, rate = MCSDecoderNR(device="cpu")(idx, ones, ones)  # table 1, category 1 (PDSCH)
    sionna = {int(i): (int(m), round(float(r) * 1024)) for i, m, r in zip(idx, mod, rate) if float(r) >= 0.2}
    assert NR_TABLE1 == sionna


@pytest.mark.parametrize("mcs, k, snr_db", TABLE_POINTS)
def test_abstract_bler_agrees_with_bit_true_at_table_points(mcs, k, snr_db):
    bps, r1024 = NR_TABLE1[mcs]
    n = math.ceil(k / (r1024 / 1024) / bps) * bps  # Sionna's table simulations: n = ceil(k / r) to whole symbols
    chain = DigitalChain(LinkConfig(kind="awgn"), bps, k, n, num_codewords=1, crc="CRC24A")
    res = simulate_ber(chain, csnr_db_to_no(snr_db), torch.Generator().manual_seed(mcs), batch_size=200,
                       max_bit_errors=None, max_block_errors=10**6, max_blocks=400)
    abstract = float(PhyAbstraction().bler(mcs, k, torch.tensor([10 ** (snr_db / 10)]))[0])
    assert 0.15 < abstract < 0.7  # a waterfall point, where agreement means something
    sigma = math.sqrt(abstract * (1 - abstract) / res.blocks)
    # 4 binomial sigmas of our 400 blocks + 0.05 for the table's own Monte-Carlo error and its
    # interpolation onto the 0.1 dB / 100-bit grid
    assert abs(res.bler - abstract) < 4 * sigma + 0.05, (res.bler, abstract)


def test_olla_converges_to_its_bler_target():
    # 16 independent links side by side (one OLLA state each), 300 messages each, fixed seed
    target, snr_db, links, messages, burn_in = 0.1, 8.0, 16, 300, 50
    abstraction = PhyAbstraction()
    olla = OuterLoop(target, delta_up=0.5, num_allocated_re=1024, sinr_eff_init_db=snr_db, num_links=links)
    gen = torch.Generator().manual_seed(5)
    sinr = torch.full((2, 512), 10 ** (snr_db / 10))  # 2 codewords of 512 symbols, AWGN
    nacks, used = [], set()
    for t in range(messages):
        mcs = olla.mcs()
        acks, effs = [], []
        for link in range(links):  # each link's message at its own MCS
            m = int(mcs[link])
            bps, r1024 = NR_TABLE1[m]
            ok, _, eff = abstraction.decode(sinr[None], m, round(r1024 / 1024 * 512 * bps), gen)
            acks.append(bool(ok.all()))
            effs.append(float(eff[0, 0]))
            used.add(m)
        olla.report(acks, effs)
        if t >= burn_in:
            nacks += [not a for a in acks]
    rate = sum(nacks) / len(nacks)
    assert abs(rate - target) < 0.03, rate
    assert len(used) >= 2  # it dithers between neighbouring MCSs at a fixed SNR
