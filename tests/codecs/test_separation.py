"""Separation baseline: bit-exact decode at high CSNR, budget fitting, CRC-failure policies,
adaptive MCS against the committed BLER table, and the capacity bound.

Small images (64x64 synthetic, JPEG: fast Pillow encoder) and one HEVC case at 96x96 with the
``ultrafast`` preset keep the whole file at a few tens of seconds on 2 CPU cores.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from linksim.codecs.base import OperatingPoint
from linksim.codecs.classical import bit_budget, get_codec
from linksim.codecs.mcs import MCS_TABLE, codeword_layout, load_bler_table, select_mcs
from linksim.codecs.separation import (FALLBACK_GREY, IdealSeparationBound, SeparationMethod,
                                       length_field_bits, pack_stream, parse_stream)
from linksim.phy.links import LinkConfig
from linksim.method_configs import IdealBoundConfig, SeparationConfig


def _images(b: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth synthetic photos-like images: gradients + a few blobs (compressible, non-trivial)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(b):
        c = torch.rand(3, 4, generator=g)
        img = torch.stack([c[i, 0] * xx + c[i, 1] * yy + 0.3 * torch.sin(6 * c[i, 2] * xx + 9 * c[i, 3] * yy)
                           for i in range(3)])
        out.append((img - img.min()) / (img.max() - img.min()))
    return torch.stack(out).float()


def _point(csnr_db: float, cbr=Fraction(1, 4), size: int = 64) -> OperatingPoint:
    return OperatingPoint(csnr_db=csnr_db, cbr=Fraction(cbr), link=LinkConfig(kind="awgn"),
                          image_shape=(size, size), seed=0)


def _run(method, images, seed: int = 0):
    gen = lambda tag: torch.Generator().manual_seed(seed * 1000 + tag)  # noqa: E731
    tx = method.encode(images, gen(1))
    rx = method.channel(tx, gen(2), gen(3))
    return tx, rx, method.decode(rx, gen(4))


def _psnr(x, y) -> torch.Tensor:
    return -10 * torch.log10(((x - y) ** 2).mean(dim=(1, 2, 3)))


# ------------------------------------------------------------------ stream format and budget
def test_stream_roundtrip_and_length_field():
    payload = bytes(range(200))
    bits = pack_stream(payload, 64, 96, 2000, torch.Generator().manual_seed(0))
    assert bits.shape == (2000,) and set(bits.unique().tolist()) <= {0.0, 1.0}
    assert parse_stream(bits, 2000) == (64, 96, payload)
    assert length_field_bits(2000) == (1968 // 8).bit_length() == 8
    with pytest.raises(ValueError, match="does not fit"):
        pack_stream(bytes(300), 64, 64, 2000)


def test_layout_fills_the_symbols_and_budget_matches_design():
    # 64x64 at CBR 1/12: N = 1024 symbols; 16-QAM -> 4096 coded bits -> 4 codewords of 1024
    lay = codeword_layout(1024, 4, 0.5)
    assert (lay.n, lay.k, lay.num_codewords, lay.num_symbols) == (1024, 512, 4, 1024)
    # 64-QAM: 6144 bits -> 6 codewords, n a multiple of 6 (38.212 bit interleaver)
    lay = codeword_layout(1024, 6, 0.75)
    assert lay.num_codewords == 6 and lay.n == 1020 and lay.num_symbols == 1020
    m = SeparationMethod(SeparationConfig(codec="jpeg", modulation="16qam", code_rate=0.5), _point(20.0, Fraction(1, 12)))
    lbits = length_field_bits(4 * (512 - 24))
    assert m.capacity_bits == 4 * (512 - 24) == m.chain.num_info_bits
    assert m.budget_bits == 4 * (512 - 24) - 32 - lbits == bit_budget("1/12", 64, 64, 4, 512, 1024, 24, 32 + lbits)
    assert m.grid().num_data == 1024


def test_payload_fits_and_quality_is_the_best_that_fits():
    codec = get_codec("jpeg")
    m = SeparationMethod(SeparationConfig(codec="jpeg", modulation="16qam", code_rate=0.5), _point(20.0))
    images = _images(3)
    tx = m.encode(images, torch.Generator().manual_seed(0))
    for img, bits, q in zip(images, tx.payload_bits.tolist(), tx.meta["quality"].tolist()):
        assert 0 < bits <= m.budget_bits
        assert 8 * len(codec.encode(img, q)) == bits
        i = codec.qualities.index(q)
        if i + 1 < len(codec.qualities):  # the next better quality does not fit
            assert 8 * len(codec.encode(img, codec.qualities[i + 1])) > m.budget_bits


# ------------------------------------------------------------------ the link
def test_high_csnr_is_bit_exact_with_the_codec_hevc():
    cfg = SeparationConfig(codec="hevc", preset="ultrafast", modulation="16qam", code_rate=0.5)
    m = SeparationMethod(cfg, _point(30.0, Fraction(1, 12), size=96))
    images = _images(2, size=96)
    tx, rx, dec = _run(m, images)
    assert bool(dec.extras["crc_ok"].all()) and not dec.outage.any()
    assert (dec.extras["codeword_errors"] == 0).all()
    codec = get_codec("hevc", preset="ultrafast")
    for i, q in enumerate(tx.meta["quality"].tolist()):
        ref = codec.decode(codec.encode(images[i], q), 96, 96)
        assert torch.equal(dec.images[i], ref)
        assert float(_psnr(dec.images[i:i + 1], images[i:i + 1])) == pytest.approx(
            float(_psnr(ref[None], images[i:i + 1])), abs=1e-6)
    assert torch.equal(dec.payload_bits, tx.payload_bits)


@pytest.mark.parametrize("policy", ["fallback", "decode_anyway"])
def test_below_the_cliff_gives_outage_rows_not_exceptions(policy):
    # 16-QAM r=1/2 needs ~6.5 dB (table); at -5 dB every codeword fails its CRC
    cfg = SeparationConfig(codec="jpeg", modulation="16qam", code_rate=0.5, crc_failure=policy)
    m = SeparationMethod(cfg, _point(-5.0))
    _, rx, dec = _run(m, _images(2))
    assert dec.outage.all() and not dec.extras["crc_ok"].any()
    assert (dec.extras["codeword_errors"] == m.layout.num_codewords).all()
    assert torch.all(dec.images == FALLBACK_GREY)


def _flipped_rx(m: SeparationMethod, images, flip_at: list[int]):
    """A clean transmission whose decoded bits are flipped at ``flip_at`` and whose CRC failed."""
    tx = m.encode(images, torch.Generator().manual_seed(0))
    bits = tx.x.clone()
    bits[:, flip_at] = 1 - bits[:, flip_at]
    return tx, (bits, torch.zeros(bits.shape[0], m.layout.num_codewords, dtype=torch.bool),
                dict(tx.meta, payload_bits=tx.payload_bits))


def test_flipped_payload_bits_under_both_policies():
    images = _images(1, size=96)
    point = _point(30.0, Fraction(1, 12), size=96)
    hevc = dict(codec="hevc", preset="ultrafast", modulation="16qam", code_rate=0.5)
    m = SeparationMethod(SeparationConfig(**hevc), point)
    start = 32 + length_field_bits(m.capacity_bits)
    tx = m.encode(images, torch.Generator().manual_seed(0))
    mid = start + int(tx.payload_bits[0]) // 2 + 3  # one bit inside the slice data (past the ~75-byte parameter sets)
    tx, rx = _flipped_rx(m, images, [mid])
    dec = m.decode_bits(*rx)
    assert dec.outage.all() and torch.all(dec.images == FALLBACK_GREY)  # fallback: grey, outage
    anyway = SeparationMethod(SeparationConfig(**hevc, crc_failure="decode_anyway"), point)
    dec = anyway.decode_bits(*rx)
    # x265/libde265 conceal one flipped bit: the stream decodes into a (damaged) image, not an outage
    assert not dec.outage.any() and not dec.extras["crc_ok"].any()
    assert not torch.all(dec.images == FALLBACK_GREY)
    assert float(_psnr(dec.images, images)) > 10 * math.log10(1 / 0.25)  # better than a random image
    # a corrupted header (width field) cannot be trusted: fallback, even with decode_anyway
    _, rx = _flipped_rx(anyway, images, [0])
    dec = anyway.decode_bits(*rx)
    assert dec.outage.all() and torch.all(dec.images == FALLBACK_GREY)
    # garbage in place of the payload never raises
    _, rx = _flipped_rx(anyway, images, list(range(start, start + 8 * int(tx.payload_bits[0]) // 8, 1)))
    dec = anyway.decode_bits(*rx)
    assert dec.images.shape == (1, 3, 96, 96) and dec.outage.dtype == torch.bool


def test_source_outage_when_nothing_fits():
    # CBR 1/96 of 64x64 = 128 QPSK symbols = 256 coded bits: one tiny codeword, less than any JPEG
    m = SeparationMethod(SeparationConfig(codec="jpeg", modulation="qpsk", code_rate=0.5), _point(30.0, Fraction(1, 96)))
    tx, _, dec = _run(m, _images(1))
    assert tx.outage.all() and dec.outage.all() and int(tx.payload_bits[0]) == 0


# ------------------------------------------------------------------ adaptive MCS
def test_adaptive_mcs_rises_with_csnr_and_meets_the_table_target():
    table = load_bler_table()
    csnrs = [-2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0]
    chosen = [select_mcs(c, 4096, 0.1, table) for c in csnrs]
    eff = [m.efficiency for m in chosen]
    assert eff == sorted(eff) and eff[-1] > eff[0]
    assert chosen[0] is not None and select_mcs(-10.0, 4096, 0.1, table) is None
    for c, mcs in zip(csnrs, chosen):
        lay = codeword_layout(4096, mcs.bits_per_symbol, mcs.code_rate)
        assert 1 - (1 - table.bler(mcs, c)) ** lay.num_codewords <= 0.1
        i = MCS_TABLE.index(mcs)  # the next more efficient MCS misses the target
        if i + 1 < len(MCS_TABLE):
            nxt = MCS_TABLE[i + 1]
            lay = codeword_layout(4096, nxt.bits_per_symbol, nxt.code_rate)
            assert 1 - (1 - table.bler(nxt, c)) ** lay.num_codewords > 0.1
    # the table itself: each MCS needs more SNR than the previous one, and more than Shannon
    req = [table.required_csnr_db(m, 0.1) for m in MCS_TABLE]
    assert req == sorted(req)
    for m, r in zip(MCS_TABLE, req):
        assert r > 10 * math.log10(2 ** m.efficiency - 1)


def test_adaptive_choice_bler_by_simulation():
    # 64x64 at CBR 1/12: 1024 symbols; at 8 dB the table picks 16-QAM r=490/1024 (needs ~6.5 dB)
    cfg = SeparationConfig(codec="jpeg", mcs="adaptive", target_bler=0.1)
    m = SeparationMethod(cfg, _point(8.0, Fraction(1, 12)))
    assert m.mcs.label == "16qam-490"
    from linksim.phy.ber import simulate_ber

    res = simulate_ber(m.chain, m.point.no, torch.Generator().manual_seed(3), batch_size=25,
                       max_bit_errors=None, max_block_errors=None, max_blocks=100)
    image_err = 1 - (1 - res.bler) ** m.layout.num_codewords
    # 100 codewords: a codeword BLER <= 2.6 % (10 % per 4-codeword image) plus 3 binomial sigmas
    assert image_err <= 0.1 + 3 * math.sqrt(0.1 * 0.9 / 25)
    # and a higher CSNR gets a more efficient MCS from the same method class
    assert SeparationMethod(cfg, _point(14.0, Fraction(1, 12))).mcs.efficiency > m.mcs.efficiency


# ------------------------------------------------------------------ the bound
@pytest.mark.parametrize("csnr_db", [0.0, 10.0, 30.0])
def test_ideal_bound_budget_and_no_outage_at_high_snr(csnr_db):
    m = IdealSeparationBound(IdealBoundConfig(codec="jpeg"), _point(csnr_db, Fraction(1, 12)))
    expected = math.floor(1024 * math.log2(1 + 10 ** (csnr_db / 10)))
    assert m.capacity_bits == expected and m.budget_bits == expected - 32
    if csnr_db == 30.0:
        images = _images(2)
        tx, _, dec = _run(m, images)
        assert not dec.outage.any() and (tx.payload_bits <= m.budget_bits).all()
        codec = get_codec("jpeg")
        for i, q in enumerate(tx.meta["quality"].tolist()):
            assert torch.equal(dec.images[i], codec.decode(codec.encode(images[i], q), 64, 64))


def test_config_errors_are_validation_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SeparationConfig(code_rate=0.1)
    with pytest.raises(ValidationError):
        SeparationConfig(mcs="ideal")
    with pytest.raises(ValidationError, match="preset"):
        SeparationConfig(codec="hevc", preset="turbo")


def test_shipped_scenario_validates():
    from pathlib import Path

    from linksim.scenario import load_scenario

    scn = load_scenario(Path(__file__).parents[2] / "scenarios" / "separation_awgn.yaml")
    assert {m.kind for m in scn.methods} == {"separation", "ideal"}


def test_fit_skips_qualities_the_encoder_cannot_produce():
    from linksim.codecs.classical.pillow_codecs import JPEGCodec
    from linksim.codecs.separation import fit_cached

    class Fragile(JPEGCodec):  # like vvenc at QP 0 on small images: the best qualities fail
        def _encode_uint8(self, arr, quality):
            if quality >= 99:
                raise ValueError("encoder failed")
            return super()._encode_uint8(arr, quality)

    img = _images(1)[0]
    fit = fit_cached(Fragile(), img, 10**7)  # a budget any quality fits
    assert fit is not None and fit.quality == 98


@pytest.mark.parametrize("estimator", ["perfect", "ls", "lmmse"])
def test_over_ofdm_multipath_at_high_csnr_is_the_codec_decode(estimator):
    """Over 8-tap OFDM multipath with each CSI kind, a strong link delivers the codec's own decode."""
    link = LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=16, pilot_symbols=1,
                      estimator=estimator, equalizer="mmse")
    point = OperatingPoint(csnr_db=40.0, cbr=Fraction(1, 4), link=link, image_shape=(64, 64), seed=0)
    cfg = SeparationConfig(codec="jpeg", modulation="qpsk", code_rate=0.5)
    m = SeparationMethod(cfg, point)
    assert m.grid().pilot_res > 0 and m.grid().num_data == 3 * 64 * 64 // 4
    images = _images(2)
    tx, rx, dec = _run(m, images)
    assert not dec.outage.any() and bool(dec.extras["crc_ok"].all())
    codec = get_codec("jpeg")
    for i, q in enumerate(tx.meta["quality"].tolist()):
        assert torch.equal(dec.images[i], codec.decode(codec.encode(images[i], q), 64, 64))


def test_mcs_margin_backs_off_the_adaptive_choice():
    # the margin makes the transmitter choose what it would choose at CSNR − margin
    for c in (5.0, 12.5, 20.0):
        plan = SeparationMethod.plan(SeparationConfig(codec="jpeg", mcs="adaptive", mcs_margin_db=5.0), _point(c))[0]
        ref = SeparationMethod.plan(SeparationConfig(codec="jpeg", mcs="adaptive"), _point(c - 5.0))[0]
        assert plan == ref
    hi = SeparationMethod.plan(SeparationConfig(codec="jpeg", mcs="adaptive"), _point(20.0))[0]
    lo = SeparationMethod.plan(SeparationConfig(codec="jpeg", mcs="adaptive", mcs_margin_db=5.0), _point(20.0))[0]
    assert lo.efficiency < hi.efficiency
    with pytest.raises(ValueError):
        SeparationConfig(codec="jpeg", mcs="adaptive", mcs_margin_db=-1.0)


def test_separation_over_ofdm_fills_the_grid():
    # 64x64 at CBR 1/24: N = 512 symbols, a multiple of 16 data OFDM symbols; the codewords alone
    # need fewer, the chain pads with filler so the frame is whole
    link = LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=16, estimator="lmmse")
    point = OperatingPoint(csnr_db=30.0, cbr=Fraction(1, 24), link=link, image_shape=(64, 64), seed=0)
    cfg = SeparationConfig(codec="jpeg", mcs="adaptive")
    cfg.check_point(point)
    m = SeparationMethod(cfg, point)
    assert m.chain.num_symbols == 512 and m.grid().subcarriers == 32
    assert m.chain.num_pad_bits > 0


def test_lowest_rate_layout_stays_at_or_above_one_fifth():
    # 64x64 at CBR 1/48 = 256 QPSK symbols: 512 coded bits; rounding 0.2002 x 512 gave k = 102 < 512/5
    for n_sym in (256, 257, 300, 512, 1000):
        lay = codeword_layout(n_sym, MCS_TABLE[0].bits_per_symbol, MCS_TABLE[0].code_rate)
        assert lay.k * 5 >= lay.n, (n_sym, lay)
    link = LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=16, estimator="lmmse")
    point = OperatingPoint(csnr_db=0.0, cbr=Fraction(1, 48), link=link, image_shape=(64, 64), seed=0)
    SeparationMethod(SeparationConfig(codec="hevc", mcs="adaptive", mcs_margin_db=5.0), point)  # builds the LDPC


def test_capacity_below_the_header_is_a_source_outage_not_a_crash(tmp_path):
    """CBR 1/384 at 1 dB: the adaptive MCS leaves fewer information bits than the 32-bit header
    (a 128x128 image: 128 symbols); the point is an outage (grey fallback), as a real link would
    deliver nothing (it used to raise 'payload of 0 bits does not fit 28 bits')."""
    import linksim

    res = linksim.run({"name": "s", "seed": 0, "device": "cpu",
                       "data": {"source": "embedded", "names": ["coffee"], "size": 128},
                       "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [1], "cbr": ["1/384"]},
                       "methods": [{"name": "hevc_ldpc", "kind": "separation", "codec": "hevc",
                                    "mcs": "adaptive", "mcs_margin_db": 5}],
                       "metrics": ["psnr"]}, output=tmp_path / "run")
    row = res.rows.iloc[0]
    assert bool(row["outage"]) and int(row["channel_uses"]) == 128
    # the fallback is uniform mid-grey: its PSNR equals 10 log10(1 / mean((x - 0.5)^2)) of the original
    from linksim.codecs.images import embedded_array, resize_center_crop, to_tensor

    x = resize_center_crop(to_tensor(embedded_array("coffee")), 128, 128).clamp(0, 1)
    want = 10 * torch.log10(1 / ((x - 0.5) ** 2).mean())
    assert abs(float(row["psnr"]) - float(want)) < 0.05
