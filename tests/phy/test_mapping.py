"""QAM mapper/demapper: energy, labelling, LLR scale."""

import pytest
import torch

from linksim.phy.mapping import MODULATIONS, QAMDemapper, QAMMapper, bits_per_symbol


class TestMapping:
    @pytest.mark.parametrize("name", list(MODULATIONS))
    def test_unit_energy_and_noise_free_round_trip(self, name):
        bps = bits_per_symbol(name)
        mapper, demapper = QAMMapper(bps), QAMDemapper(bps)
        assert mapper.points.shape == (2**bps,)
        assert mapper.points.abs().square().mean().item() == pytest.approx(1.0, abs=1e-6)
        g = torch.Generator().manual_seed(0)
        bits = torch.randint(0, 2, (3, 24 * bps), generator=g).float()
        x = mapper(bits)
        assert x.shape == (3, 24) and x.dtype == torch.complex64
        llr = demapper(x, torch.full((3, 24), 1e-2))
        assert llr.shape == bits.shape
        assert torch.equal((llr > 0).float(), bits)

    def test_gray_labelling_neighbours_differ_in_one_bit(self):
        pts = QAMMapper(4).points
        d = (pts[:, None] - pts[None, :]).abs()
        dmin = d[d > 0].min()
        for i in range(16):
            for j in range(16):
                if abs(d[i, j] - dmin) < 1e-5:
                    assert bin(i ^ j).count("1") == 1

    def test_bpsk_is_real_and_llr_is_minus_4re_over_no(self):
        mapper = QAMMapper(1)
        # Sionna's 1-bit PAM: label 0 -> +1, label 1 -> -1
        torch.testing.assert_close(mapper.points, torch.tensor([1.0 + 0j, -1.0 + 0j]))
        y = torch.tensor([[0.3 + 2.0j, -0.1 - 1.0j]])
        llr = QAMDemapper(1)(y, torch.tensor([[0.5, 0.25]]))
        # CN(0, N0) noise: the real part has variance N0/2 -> |LLR| = 2 Re(y) / (N0/2); b=1 is -1
        torch.testing.assert_close(llr, torch.tensor([[-4 * 0.3 / 0.5, -4 * -0.1 / 0.25]]))

    def test_names(self):
        assert [bits_per_symbol(n) for n in ("bpsk", "QPSK", "16qam", "64-qam", "256qam")] == [1, 2, 4, 6, 8]
        with pytest.raises(ValueError, match="modulation must be one of"):
            bits_per_symbol("8psk")
