"""AnalogChain / DigitalChain over flat links: power, noise, forward operator, gradients."""

import math

import pytest
import torch

from linksim.phy.chains import AnalogChain, DigitalChain, build_link, grid_info
from linksim.phy.channels import FlatLink, complex_normal
from linksim.phy.links import LinkConfig

FLAT = [
    LinkConfig(kind="awgn"),
    LinkConfig(kind="rayleigh", coherence_symbols=8, equalizer="zf"),
    LinkConfig(kind="rayleigh", coherence_symbols=None, equalizer="mmse", interleave=False),
]


def _images_with_different_scales(n=256, precision=torch.complex64):
    g = torch.Generator().manual_seed(11)
    x = complex_normal((3, n), g, precision)
    return x * torch.tensor([1e-3, 1.0, 250.0], dtype=x.real.dtype)[:, None]


class TestAnalogChain:
    @pytest.mark.parametrize("cfg", FLAT, ids=lambda c: f"{c.kind}-{c.equalizer}")
    def test_transmit_power_is_one_per_image(self, cfg):
        chain = AnalogChain(cfg, 256)
        x = _images_with_different_scales()
        g = torch.Generator().manual_seed(0)
        r = chain.generate(3, g)
        y_eq, state = chain.apply(x, r, 0.0, g)
        # what went on air: x * power_scale, exactly unit power per image
        p = (x * state.power_scale[:, None]).abs().square().mean(dim=1)
        torch.testing.assert_close(p, torch.ones(3), rtol=1e-5, atol=0)
        # noise-free, unbiased equaliser: y_eq is the normalised x itself
        torch.testing.assert_close(y_eq.abs().square().mean(dim=1), torch.ones(3), rtol=1e-4, atol=0)
        torch.testing.assert_close(state.power_scale, 1 / x.abs().square().mean(dim=1).sqrt())

    def test_measured_noise_variance_matches_csnr_awgn(self):
        n = 50_000
        chain = AnalogChain(LinkConfig(kind="awgn"), n)
        g = torch.Generator().manual_seed(1)
        csnr_db = torch.tensor([0.0, 10.0])
        no = 10 ** (-csnr_db / 10)
        x = complex_normal((2, n), g) * 7.0
        y_eq, state = chain(x, no, g)
        noise = y_eq - state.forward_operator(x, use_true_channel=True)
        var = noise.abs().square().mean(dim=1)
        # Gamma(n, 1)/n: 5-sigma band
        assert torch.all((var / no - 1).abs() < 5 / math.sqrt(n)), var / no
        torch.testing.assert_close(state.no_eff, no[:, None].expand(2, n))

    @pytest.mark.parametrize("cfg", FLAT, ids=lambda c: f"{c.kind}-{c.equalizer}")
    def test_forward_operator_equals_y_eq_minus_equalised_noise(self, cfg):
        chain = AnalogChain(cfg, 64)
        x = _images_with_different_scales(64)
        g = torch.Generator().manual_seed(2)
        r = chain.generate(3, g)
        no = torch.tensor([0.05, 0.5, 1.0])
        state_before = g.get_state()
        y_eq, state = chain.apply(x, r, no, g)
        # replay the noise draw (FlatLink draws exactly one CN(0,1) tensor per transmit)
        g.set_state(state_before)
        n = complex_normal((3, 64), g) * no.sqrt()[:, None]
        w_n = state.output.weights * n
        if state.perm is not None:
            w_n = chain.interleaver.deinterleave(w_n, state.perm)
        a = state.forward_operator(x, use_true_channel=True)
        torch.testing.assert_close(a, y_eq - w_n, rtol=1e-5, atol=1e-5)
        # flat links have perfect CSI: the estimated-channel operator is the same
        torch.testing.assert_close(state.forward_operator(x), a)
        # and it is invariant to the input scale (it re-normalises its input)
        torch.testing.assert_close(state.forward_operator(5 * x), a, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("cfg", FLAT[:2], ids=lambda c: c.kind)
    def test_gradient_matches_finite_differences(self, cfg):
        chain = AnalogChain(cfg, 24, precision="double")
        g = torch.Generator().manual_seed(3)
        r = chain.generate(2, g)
        x0 = complex_normal((2, 24), g, torch.complex128) * 3
        target = complex_normal((2, 24), g, torch.complex128)
        noise_seed = 123

        def loss(x):  # frozen channel and frozen noise: a deterministic function of x
            y_eq, _ = chain.apply(x, r, torch.tensor([0.1, 0.3]), torch.Generator().manual_seed(noise_seed))
            return (y_eq - target).abs().square().sum()

        x = x0.clone().requires_grad_(True)
        loss(x).backward()
        eps = 1e-6
        for b, i in [(0, 0), (0, 7), (1, 13), (1, 23)]:
            for d in (1.0, 1.0j):  # dL/dRe, dL/dIm; torch's grad is dL/dRe + i dL/dIm
                xp, xm = x0.clone(), x0.clone()
                xp[b, i] += eps * d
                xm[b, i] -= eps * d
                fd = (loss(xp) - loss(xm)).item() / (2 * eps)
                ad = x.grad[b, i].real.item() if d == 1.0 else x.grad[b, i].imag.item()
                assert ad == pytest.approx(fd, rel=1e-6, abs=1e-8)

    def test_forward_operator_gradient(self):
        chain = AnalogChain(LinkConfig(kind="rayleigh", coherence_symbols=3), 12, precision="double")
        g = torch.Generator().manual_seed(4)
        x = complex_normal((2, 12), g, torch.complex128)
        _, state = chain(x, 0.2, g)
        xr = x.clone().requires_grad_(True)
        torch.autograd.gradcheck(lambda z: torch.view_as_real(state.forward_operator(z)), (xr,))

    def test_interleaver_spreads_a_fading_block(self):
        chain = AnalogChain(LinkConfig(kind="rayleigh", coherence_symbols=16), 64)
        g = torch.Generator().manual_seed(5)
        _, state = chain(torch.ones(1, 64, dtype=torch.complex64), 0.1, g)
        # no_eff is constant on a fading block on air; after de-interleaving, the first 16 data
        # symbols see several different fades
        assert state.no_eff[0, :16].unique().numel() > 1
        assert state.perm.shape == (64,)

    def test_shape_error(self):
        chain = AnalogChain(LinkConfig(), 8)
        with pytest.raises(ValueError, match=r"\[B, 8\]"):
            chain(torch.zeros(2, 7, dtype=torch.complex64), 0.1, torch.Generator())


class TestBuildLink:
    def test_flat_and_grid(self):
        link = build_link(LinkConfig(kind="rayleigh"), 10)
        assert isinstance(link, FlatLink)
        gi = grid_info(LinkConfig(kind="awgn"), 10)
        assert gi.num_data == 10 and gi.overhead == 0.0

    def test_unknown_kind(self):
        from linksim.phy.chains import link_class

        with pytest.raises(ValueError, match="channel kind must be one of"):
            link_class("mimo")


class TestDigitalChain:
    def test_sizes_and_padding(self):
        # 2 codewords of n=100 on 64-QAM: 200 coded bits -> 34 symbols, 4 filler bits
        chain = DigitalChain(LinkConfig(), "64qam", 60, 100, num_codewords=2, crc="CRC16")
        assert chain.num_info_bits == 2 * (60 - 16)
        assert chain.num_symbols == 34 and chain.num_pad_bits == 4
        assert chain.coderate == pytest.approx(0.6)
        g = torch.Generator().manual_seed(6)
        bits = torch.randint(0, 2, (3, chain.num_info_bits), generator=g).float()
        rx = chain(bits, 1e-3, g)
        assert torch.equal(rx.bits_hat, bits) and rx.crc_ok.all()
        assert rx.crc_ok.shape == (3, 2) and rx.llr.shape == (3, 2, 100)
        assert rx.state.no_eff.shape == (3, 34)

    def test_fill_to_an_ofdm_grid(self):
        # 2 x 120 coded bits on 16-QAM = 60 symbols; an OFDM frame of 8 x 8 needs 64: filler symbols
        cfg = LinkConfig(kind="ofdm", paths=4, cp=4, data_symbols=8, estimator="perfect")
        with pytest.raises(Exception, match="multiple"):
            DigitalChain(cfg, "16qam", 72, 120, num_codewords=2, crc="CRC24A")
        chain = DigitalChain(cfg, "16qam", 72, 120, num_codewords=2, crc="CRC24A", num_symbols=64)
        assert chain.num_symbols == 64 and chain.num_pad_bits == 16 and chain.grid().subcarriers == 8
        g = torch.Generator().manual_seed(3)
        bits = torch.randint(0, 2, (2, chain.num_info_bits), generator=g).float()
        x = chain.encode(bits)
        assert x.shape == (2, 64)
        # the filler is the same fixed pattern for every example and not one constellation point
        assert torch.equal(x[0, 60:], x[1, 60:]) and torch.view_as_real(x[0, 60:]).unique(dim=0).shape[0] > 1
        assert x.abs().square().mean().item() == pytest.approx(1.0, abs=0.2)
        rx = chain(bits, 1e-3, g)
        assert torch.equal(rx.bits_hat, bits) and rx.crc_ok.all()
        with pytest.raises(ValueError, match="needs 60"):
            DigitalChain(cfg, "16qam", 72, 120, num_codewords=2, crc="CRC24A", num_symbols=48)

    def test_uncoded_sizes(self):
        chain = DigitalChain(LinkConfig(), 4, None, None, num_codewords=3, crc=None, block_bits=40)
        assert (chain.num_info_bits, chain.num_symbols, chain.coderate) == (120, 30, 1.0)
        chain = DigitalChain(LinkConfig(), 2, None, None, num_codewords=1, crc="CRC6", block_bits=40)
        assert chain.num_info_bits == 34

    def test_crc_flags_a_corrupted_codeword(self):
        # uncoded + CRC at an SNR where many blocks fail: crc_ok must match the actual errors
        chain = DigitalChain(LinkConfig(), 2, None, None, num_codewords=8, crc="CRC24A", block_bits=64)
        g = torch.Generator().manual_seed(7)
        bits = torch.randint(0, 2, (4, chain.num_info_bits), generator=g).float()
        rx = chain(bits, 0.25, g)  # Eb/N0 3 dB: BER ~2.3e-2, ~20 % of 64-bit blocks error-free
        # a block (payload + parity, as sent) is wrong iff any hard decision differs
        sent = chain.crc.encode(bits.reshape(4, 8, -1))
        wrong = ((rx.llr > 0).float() != sent).any(-1)
        assert wrong.any() and (~wrong).any()
        assert torch.equal(rx.crc_ok, ~wrong)
        # payload errors are a subset of what the CRC flags (no undetected error here)
        payload_wrong = (rx.bits_hat != bits).reshape(4, 8, -1).any(-1)
        assert payload_wrong.any() and not (payload_wrong & rx.crc_ok).any()

    def test_argument_errors(self):
        with pytest.raises(ValueError, match="both k and n"):
            DigitalChain(LinkConfig(), 2, 64, None, num_codewords=1)
        with pytest.raises(ValueError, match="no information bits"):
            DigitalChain(LinkConfig(), 2, 24, 48, num_codewords=1, crc="CRC24A")
        chain = DigitalChain(LinkConfig(), 2, 64, 128, num_codewords=1, crc=None)
        with pytest.raises(ValueError, match=r"\[B, 64\]"):
            chain(torch.zeros(1, 65), 0.1, torch.Generator())
