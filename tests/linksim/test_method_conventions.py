"""Conventions pinned where users meet them: at the method level (issue 12 items 2 and 4).

Each check measures the method's own output and compares it with theory or an independent
computation written here, never with the formula the implementation uses.
"""

from __future__ import annotations

import math
import pytest
import torch

from linksim.runner import run_scenario
from linksim.registry import METHODS
from linksim.scenario import scenario_from_dict
from linksim.sweep import expand, operating_point

CSNR_DB = 5.0
N0 = 10 ** (-CSNR_DB / 10)


def _method(method: dict, channel: dict, csnr_db: float, cbr: str, size: int = 64, limit: int = 2):
    """The method as a scenario builds it (validated config, operating point) + its test images."""
    from linksim.data import load_images

    scn = scenario_from_dict({
        "name": "conv", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": size, "limit": limit},
        "channel": channel, "sweep": {"csnr_db": [csnr_db], "cbr": [cbr]}, "methods": [method]})
    point = expand(scn)[0]
    cfg = scn.methods[0]
    return METHODS.get(cfg.kind)(cfg, operating_point(scn, point)), load_images(scn.data).images


@pytest.mark.parametrize("kind, channel", [
    ("jscc", {"kind": "awgn"}), ("jscc", {"kind": "ofdm"}),
    ("separation", {"kind": "awgn"}), ("separation", {"kind": "ofdm"}),
    ("diffcom", {"kind": "awgn"}), ("diffcom", {"kind": "ofdm"}),
    ("hifi_diffcom", {"kind": "awgn"}), ("hifi_diffcom", {"kind": "ofdm"}),
    ("blind_diffcom", {"kind": "ofdm", "pilot_symbols": 0}),
])
def test_noise_added_at_the_channel_is_n0(kind, channel):
    """E|n|² of the noise in the method's own received samples equals N0 = 10^(−CSNR/10).

    n = Y_data − H ⊙ X on the data positions (the true channel H, the method's transmitted
    symbols X): exactly the added noise, for flat and OFDM links alike. 2 images x 512 (JSCC/
    diffusion) or 1024 (separation) complex samples: the sample mean of |n|² (exponential) has
    a relative standard deviation 1/√n ≤ 3.2 %; the bound is 4 of those (13 %) — a doubled or
    halved noise is 100 % / 50 % off. The receiver's own N0 (``state.no``) must be N0 too."""
    cbr = "1/12" if kind == "separation" else "1/24"
    method, images = _method({"name": "m", "kind": kind}, channel, CSNR_DB, cbr)
    tx = method.encode(images, torch.Generator().manual_seed(1))
    rx = method.channel(tx, torch.Generator().manual_seed(2), torch.Generator().manual_seed(3))
    state = rx.state
    symbols = method.chain.encode(tx.x) if kind == "separation" else tx.x
    noise = state.received() - state.forward_received(symbols, use_true_channel=True)
    measured = noise.abs().square().mean().item()
    assert measured == pytest.approx(N0, rel=4 / math.sqrt(noise.numel()))
    torch.testing.assert_close(state.no.double(), torch.full_like(state.no.double(), N0))


def test_hifi_start_uses_the_scenarios_cbr():
    """HiFi-DiffCom at CBR 1/24: t_start is the first step whose log10(ᾱ/(1−ᾱ)) lies below
    κ·ρ·log10(1+snr) with ρ = 1/24 (paper eq.; counted here by hand), not the 1/48 case."""
    method, _ = _method({"name": "h", "kind": "hifi_diffcom"}, {"kind": "awgn"}, 10.0, "1/24")
    ac = method.prior.alphas_cumprod.double()
    log_snr = torch.log10(ac / (1 - ac))

    def first_below(rho):
        return int((log_snr >= 5.0 * rho * math.log10(1 + 10.0)).sum())

    assert method.receiver.t_adaptive == first_below(1 / 24)
    assert first_below(1 / 24) != first_below(1 / 48)


def test_coded_phy_ber_csnr_is_ebno_plus_rate(tmp_path):
    """Rate-1/2 LDPC with 16-QAM carries 2 info bits per symbol: CSNR = Eb/N0 + 10log10(2)."""
    raw = {"name": "c", "seed": 0, "device": "cpu", "channel": {"kind": "awgn"}, "sweep": {"ebno_db": [2.0]},
           "methods": [{"name": "l", "kind": "phy_ber", "modulation": "16qam", "coding": "ldpc", "k": 512,
                        "n": 1024, "batch_size": 4, "max_blocks": 4}]}
    import pandas as pd

    out = run_scenario(scenario_from_dict(raw), output=tmp_path)
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row.coderate == pytest.approx(0.5)
    assert row.csnr_db == pytest.approx(2.0 + 3.0103, abs=1e-3)


@pytest.mark.parametrize("bps", [2, 4, 6])
def test_codeword_layout_keeps_n_at_least_n_target(bps):
    """Whenever the budget holds one nominal codeword, every codeword is at least n_target long
    (up to the rounding of n down to whole symbols, < bps bits), the codewords fit in the budget
    and leave less than one codeword unused."""
    from linksim.codecs.mcs import codeword_layout

    for n_symbols in [512, 700, 1000, 1024, 1500, 2047, 3000, 4096, 5000, 12288]:
        coded = n_symbols * bps
        if coded < 1024:
            continue
        lay = codeword_layout(n_symbols, bps, 0.5, n_target=1024)
        assert lay.n > 1024 - bps, (n_symbols, bps, lay)
        assert lay.num_codewords * lay.n <= coded
        assert coded - lay.num_codewords * lay.n < lay.n


class TestMSSSIMAtTheSizesWeUse:
    """MS-SSIM equals torchmetrics with the betas written out here (first s published betas,
    renormalised) at 32/64/128 px, and works at 88/96/98 px (where 4 or 5 scales would not fit)."""

    PUBLISHED = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

    @pytest.mark.parametrize("side, scales", [(32, 2), (64, 3), (88, 3), (96, 3), (98, 3), (128, 4)])
    def test_equals_torchmetrics_with_explicit_betas(self, side, scales):
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

        from linksim.metrics.pixel import ms_ssim

        g = torch.Generator().manual_seed(side)
        x = torch.rand(2, 3, side, side, generator=g)
        y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        b = self.PUBLISHED[:scales]
        betas = tuple(v / sum(b) for v in b)
        ref = tm(y, x, data_range=1.0, kernel_size=11, sigma=1.5, betas=betas, reduction="none", normalize="relu")
        got = ms_ssim(x, y)
        torch.testing.assert_close(got, ref)
        assert torch.isfinite(got).all() and ((got > 0) & (got < 1)).all()


@pytest.mark.slow  # ~40 LDPC Monte-Carlo points of 96 codewords each
def test_separation_bler_matches_the_mcs_table():
    """The separation method's own chain (fixed MCS, AWGN, 1024 symbols) at each tabulated
    waterfall CSNR: the simulated codeword error rate lies in the binomial interval of the
    table's value (both estimates' variances; 3.5 sigma + 0.02)."""
    from linksim.codecs.mcs import MCS_TABLE, load_bler_table
    from linksim.phy.ber import simulate_ber

    table = load_bler_table()
    blocks = 96
    misses = []
    for mcs in MCS_TABLE:
        xs, ys = table.curves[mcs.label]
        for csnr, p in zip(xs, ys):
            if not 0.05 <= p <= 0.95:
                continue
            method, _ = _method({"name": "s", "kind": "separation", "codec": "jpeg", "mcs": "fixed",
                                 "modulation": mcs.label.split("-")[0], "code_rate": mcs.code_rate},
                                {"kind": "awgn"}, csnr, "1/12", limit=1)
            assert method.layout.n == 1024 // mcs.bits_per_symbol * mcs.bits_per_symbol  # the table's n
            res = simulate_ber(method.chain, method.point.no, torch.Generator().manual_seed(11),
                               batch_size=96 // method.layout.num_codewords, max_bit_errors=None,
                               max_block_errors=None, max_blocks=blocks)
            n_table = min(400, math.ceil(50 / p))  # the table stopped at 50 errors or 400 codewords
            sigma = math.sqrt(p * (1 - p) * (1 / res.blocks + 1 / n_table))
            if abs(res.bler - p) > 3.5 * sigma + 0.02:
                misses.append((mcs.label, csnr, p, res.bler, res.blocks))
    assert not misses
