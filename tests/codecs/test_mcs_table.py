"""The MCS arithmetic of the separation baseline against hand computations: the BLER table's
log-linear interpolation, its edges, required CSNR, the codeword layout's rules (module notes of
``linksim.codecs.mcs``) and the adaptive choice's image error rate ``1 - (1 - p_cw)^C``."""

from __future__ import annotations

import json
import math

import pytest

from linksim.codecs.mcs import MCS, BlerTable, codeword_layout, load_bler_table, select_mcs

QPSK, QAM16 = MCS("qpsk", 512), MCS("16qam", 512)
#: a made-up table: QPSK-512 falls 1 -> 1e-1 -> 1e-3 -> 0 over 0, 2, 4, 6 dB; 16QAM-512 4 dB later
TABLE = BlerTable({"meta": {"n": 1024}, "curves": {
    "qpsk-512": {"csnr_db": [0, 2, 4, 6], "bler": [1.0, 0.1, 0.001, 0.0]},
    "16qam-512": {"csnr_db": [4, 6, 8, 10], "bler": [1.0, 0.1, 0.001, 0.0]},
}})


def test_mcs_properties():
    m = MCS("64qam", 948)
    assert (m.bits_per_symbol, m.code_rate, m.label) == (6, 948 / 1024, "64qam-948")
    assert m.efficiency == pytest.approx(6 * 948 / 1024)
    assert (QPSK.bits_per_symbol, QAM16.bits_per_symbol) == (2, 4)


def test_bler_interpolates_linearly_in_log10():
    assert TABLE.bler(QPSK, 0.0) == 1.0 and TABLE.bler(QPSK, 2.0) == pytest.approx(0.1)
    assert TABLE.bler(QPSK, 1.0) == pytest.approx(10 ** -0.5)  # halfway between 1 and 0.1 in log
    assert TABLE.bler(QPSK, 3.5) == pytest.approx(10 ** (-1 + 0.75 * -2))
    # towards a zero-error point: log-linear down to the 1e-6 floor, 0 at the point itself
    assert TABLE.bler(QPSK, 5.0) == pytest.approx(10 ** (-3 + 0.5 * -3))
    assert TABLE.bler(QPSK, 6.0) == 0.0 and TABLE.bler(QPSK, 9.0) == 0.0  # last value above the grid
    assert TABLE.bler(QPSK, -0.01) == 1.0 and TABLE.bler(QPSK, -20) == 1.0  # below the grid
    edge = BlerTable({"curves": {"qpsk-512": {"csnr_db": [0, 1], "bler": [0.5, 0.01]}}})
    assert edge.bler(QPSK, 1.0) == pytest.approx(0.01) and edge.bler(QPSK, 7.0) == pytest.approx(0.01)
    assert edge.bler(QPSK, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not in the BLER table; known: qpsk-512"):
        edge.bler(QAM16, 1.0)


def test_required_csnr_is_the_first_grid_point_meeting_the_target():
    assert TABLE.required_csnr_db(QPSK, 0.1) == 2.0
    assert TABLE.required_csnr_db(QPSK, 0.05) == 4.0
    assert TABLE.required_csnr_db(QPSK, 1.0) == 0.0
    assert TABLE.required_csnr_db(QAM16, 0.0) == 10.0
    assert TABLE.required_csnr_db(QPSK, -1.0) == math.inf


def test_load_bler_table(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"curves": {"qpsk-512": {"csnr_db": [0, 1], "bler": [1, 0.5]}}}))
    t = load_bler_table(path)
    assert t.bler(QPSK, 1.0) == 0.5 and t.meta == {}
    with pytest.raises(ValueError, match="is missing; regenerate it"):
        load_bler_table(tmp_path / "absent.json")
    assert "qpsk-205" in load_bler_table().curves  # the committed table


@pytest.mark.parametrize("symbols,bps,rate", [(1024, 2, 0.5), (3000, 4, 0.75), (700, 6, 0.2), (40, 2, 0.95),
                                              (5000, 2, 0.3), (513, 4, 0.6), (256, 2, 0.2), (1000, 2, 0.2)])
def test_codeword_layout_rules(symbols, bps, rate):
    """C = max(1, G // 1024), n = floor(G / C / bps)·bps, k = round(r n) (>= n/5), C = G // n."""
    g = symbols * bps
    c = max(1, g // 1024)
    n = (g // c) // bps * bps
    k = min(max(round(rate * n), math.ceil(n / 5)), n)
    if n < 64 or k <= 32:
        with pytest.raises(ValueError, match="too few for one LDPC codeword"):
            codeword_layout(symbols, bps, rate)
        return
    lay = codeword_layout(symbols, bps, rate)
    assert (lay.n, lay.k, lay.num_codewords, lay.bits_per_symbol) == (n, k, g // n, bps)
    assert all(type(v) is int for v in (lay.n, lay.k, lay.num_codewords, lay.num_symbols))  # LDPC sizes
    assert lay.k * 5 >= lay.n  # never below 5G LDPC's lowest rate 1/5 (round(0.2 x 512) = 102 < 103)
    assert lay.num_symbols == (g // n) * n // bps <= symbols
    assert lay.coderate == pytest.approx(k / n)


def test_codeword_layout_rate_range_and_small_frames():
    for ok in (0.2, 0.95):
        codeword_layout(4096, 2, ok)
    for bad in (0.199, 0.951):
        with pytest.raises(ValueError, match=r"code_rate must lie in \[0.2, 0.95\]"):
            codeword_layout(4096, 2, bad)
    assert codeword_layout(32, 2, 0.95).n == 64  # 64 coded bits: the smallest codeword
    with pytest.raises(ValueError):
        codeword_layout(31, 2, 0.95)  # 62 coded bits
    with pytest.raises(ValueError):
        codeword_layout(32, 2, 0.5)  # k = 32 <= CRC 24 + 8 info bits: nothing useful fits
    assert codeword_layout(32, 2, 0.52).k == 33  # round(0.52 x 64) = 33: the first k that fits
    assert codeword_layout(2048, 2, 0.5, n_target=512).num_codewords == 8


def test_select_mcs_uses_the_image_error_rate():
    """At 3 dB QPSK's codeword BLER is 10^-2; with C codewords the image fails with 1 - (1 - p)^C."""
    p = 10 ** (-1 + 0.5 * -2)
    cands = (QPSK, QAM16)
    lay = codeword_layout(4096, 2, 0.5)
    p_img = 1 - (1 - p) ** lay.num_codewords
    assert select_mcs(3.0, 4096, p_img + 1e-9, TABLE, cands) == QPSK
    assert select_mcs(3.0, 4096, p_img - 1e-9, TABLE, cands) is None  # the codewords add up
    assert select_mcs(3.0, 512, p + 1e-9, TABLE, cands) == QPSK  # one codeword: p itself
    assert select_mcs(9.5, 4096, 0.1, TABLE, cands) == QAM16  # both meet it: the higher efficiency
    assert select_mcs(20.0, 4096, 0.0, TABLE, cands) == QAM16  # zero-error points
    assert select_mcs(3.0, 10, 1.0, TABLE, cands) is None  # no layout fits 10 symbols
    assert select_mcs(3.0, 4096, 1.0, TABLE, (QAM16, QPSK)) == QAM16  # order of candidates irrelevant


def test_a_candidate_that_does_not_fit_is_skipped_not_the_end():
    """20 symbols: QPSK gives 40 coded bits (no codeword fits), 16-QAM 80 (one does)."""
    assert select_mcs(20.0, 20, 0.1, TABLE, (QPSK, QAM16)) == QAM16


def test_an_interior_zero_error_point_is_the_floor():
    """A grid point where the simulation saw no error, before the last point: the interpolation
    stands on the 1e-6 floor there (not log 0), and falls log-linearly from the point before."""
    t = BlerTable({"curves": {"qpsk-512": {"csnr_db": [0, 1, 2], "bler": [0.1, 0.0, 0.0]}}})
    assert t.bler(QPSK, 1.0) == pytest.approx(1e-6)
    assert t.bler(QPSK, 0.5) == pytest.approx(10 ** (-1 + 0.5 * -5))
    assert t.bler(QPSK, 2.0) == 0.0  # the last point: its value


def test_too_few_information_bits_at_the_lowest_rate():
    """64 coded bits at rate 1/5: k = 13, far below the CRC's 24 + 8 bits: refused."""
    with pytest.raises(ValueError, match="too few for one LDPC codeword"):
        codeword_layout(32, 2, 0.2)


def test_default_target_is_ten_percent_image_error():
    """Default target 0.1: at 3 dB QPSK's image error is 1 - (1 - 10^-2)^8 = 0.077 (kept), at
    2.5 dB 1 - (1 - 10^-1.5)^8 = 0.23 (too high)."""
    lay = codeword_layout(4096, 2, 0.5)
    assert lay.num_codewords == 8
    assert select_mcs(3.0, 4096, table=TABLE, candidates=(QPSK,)) == QPSK
    assert select_mcs(2.5, 4096, table=TABLE, candidates=(QPSK,)) is None


def test_equal_efficiency_keeps_the_first_candidate():
    """QPSK 512/1024 and 16-QAM 256/1024 both carry 1 bit per symbol: the first listed is kept."""
    q16 = MCS("16qam", 256)
    t = BlerTable({"curves": {"qpsk-512": {"csnr_db": [0, 1], "bler": [1.0, 0.0]},
                              "16qam-256": {"csnr_db": [0, 1], "bler": [1.0, 0.0]}}})
    assert q16.efficiency == QPSK.efficiency == 1.0
    assert select_mcs(5.0, 4096, 0.1, t, (QPSK, q16)) is QPSK
    assert select_mcs(5.0, 4096, 0.1, t, (q16, QPSK)) is q16
