"""Modulation and coding schemes (MCS) of the separation baseline, and their BLER table.

**The table.** :data:`MCS_TABLE` follows the spirit of 3GPP TS 38.214 CQI table 1 (Table
5.2.2.1-2): QPSK, 16-QAM and 64-QAM with code rates given in 1/1024 steps. The CQI entries whose
rate is below 1/5 (CQI 1-3: 78, 120, 193 /1024) cannot be realised with Sionna's 5G LDPC encoder
(rate matching supports 1/5 <= r <= 0.95), so the lowest entry is QPSK 205/1024 (r = 0.2). The
other entries are the CQI 4-15 rates, from QPSK 308/1024 to 64-QAM 948/1024. The code rate counts
the CRC bits as information (``k = round(r n)`` includes CRC24A), as 5G's target rates do.

**Codeword layout.** An image gets ``N`` complex data symbols (``N = ρ·3HW``, DESIGN.md §3). With
``G = N log2 M`` coded bits available, :func:`codeword_layout` picks ``C = max(1, G // n_target)``
codewords and stretches them to fill the frame: ``n = floor(G / C / log2 M)·log2 M`` (a multiple of
the bits per symbol, as the 38.212 bit interleaver requires), ``k = round(r n)``. So
``n_target <= n < 2 n_target`` whenever ``G >= n_target``, at most ``log2 M - 1`` coded bits per
codeword stay unused, and ``C = floor(G / n)`` agrees with :func:`~linksim.codecs.classical.bit_budget`.

**BLER table.** ``mcs_bler_awgn.json`` (next to this file) holds codeword error rates of every MCS
over AWGN versus CSNR, simulated once with :func:`linksim.phy.ber.simulate_ber` at
``n = n_target = 1024`` (rounded down to a multiple of log2 M), CRC24A, 20 BP iterations, APP
demapping. Regenerate it with::

    python -m linksim.codecs.mcs --out codecs/mcs_bler_awgn.json

Longer codewords (``n > n_target``) have steeper waterfalls at slightly lower SNR, so the table is
conservative for them. :func:`select_mcs` uses it at run time (no simulation): it picks the highest
spectral efficiency whose *image* error rate ``1 - (1 - p_cw)^C`` stays below the target.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from linksim.phy.modulation import MODULATIONS

__all__ = [
    "MCS", "MCS_TABLE", "MCS_MODULATIONS", "BITS_PER_SYMBOL", "CodewordLayout", "codeword_layout", "BlerTable",
    "load_bler_table", "select_mcs", "DEFAULT_TABLE", "N_TARGET",
]

#: the modulations of the MCS table; their bits per symbol are the one table of the physical layer,
#: :data:`linksim.phy.mapping.MODULATIONS`
MCS_MODULATIONS = ("qpsk", "16qam", "64qam")
BITS_PER_SYMBOL = {m: MODULATIONS[m] for m in MCS_MODULATIONS}

#: Nominal LDPC codeword length [coded bits]; actual lengths lie in ``[N_TARGET, 2 N_TARGET)``.
N_TARGET = 1024

#: The committed BLER table (AWGN, n = 1024, 20 iterations).
DEFAULT_TABLE = Path(__file__).with_name("mcs_bler_awgn.json")


@dataclass(frozen=True)
class MCS:
    """One modulation and coding scheme.

    :param modulation: ``qpsk`` | ``16qam`` | ``64qam`` (Gray, unit energy)
    :param rate1024: code rate x 1024 (CRC counted as information, like 5G target rates)
    """

    modulation: str
    rate1024: int

    @property
    def bits_per_symbol(self) -> int:
        return BITS_PER_SYMBOL[self.modulation]

    @property
    def code_rate(self) -> float:
        return self.rate1024 / 1024

    @property
    def efficiency(self) -> float:
        """Spectral efficiency ``r log2 M`` [bit per complex symbol]."""
        return self.code_rate * self.bits_per_symbol

    @property
    def label(self) -> str:
        """``"16qam-490"``: the key in the BLER table."""
        return f"{self.modulation}-{self.rate1024}"


#: CQI-table-1-like MCS list, by increasing spectral efficiency (see module notes).
MCS_TABLE: tuple[MCS, ...] = (
    MCS("qpsk", 205), MCS("qpsk", 308), MCS("qpsk", 449), MCS("qpsk", 602),
    MCS("16qam", 378), MCS("16qam", 490), MCS("16qam", 616),
    MCS("64qam", 466), MCS("64qam", 567), MCS("64qam", 666), MCS("64qam", 772),
    MCS("64qam", 873), MCS("64qam", 948),
)


@dataclass(frozen=True)
class CodewordLayout:
    """How an image's channel symbols are filled with LDPC codewords.

    :param k: information bits per codeword, CRC included
    :param n: coded bits per codeword (multiple of ``bits_per_symbol``)
    :param num_codewords: codewords per image (``C``)
    :param bits_per_symbol: log2 M
    :param num_symbols: complex symbols actually sent, ``C n / log2 M`` (<= the symbols available)
    """

    k: int
    n: int
    num_codewords: int
    bits_per_symbol: int
    num_symbols: int

    @property
    def coderate(self) -> float:
        return self.k / self.n


def codeword_layout(num_symbols: int, bits_per_symbol: int, code_rate: float,
                    n_target: int = N_TARGET) -> CodewordLayout:
    """Codewords that fill ``num_symbols`` complex symbols (see module notes).

    :param num_symbols: complex data symbols available per image (``N``)
    :param bits_per_symbol: log2 M (2, 4, 6)
    :param code_rate: ``k / n`` including the CRC, in ``[1/5, 0.95]`` (5G LDPC rate matching)
    :param n_target: nominal codeword length [bits]
    :raises ValueError: fewer coded bits than one minimal codeword, or a rate out of range
    """
    if not 0.2 <= code_rate <= 0.95:
        raise ValueError(f"code_rate must lie in [0.2, 0.95] (5G LDPC rate matching); got {code_rate}")
    coded = num_symbols * bits_per_symbol
    c = max(1, coded // n_target)
    n = (coded // c) // bits_per_symbol * bits_per_symbol
    # rounding must not take k/n below 5G LDPC's lowest rate 1/5 (e.g. 0.2002 x 512 -> 102 < 512/5)
    k = min(max(round(code_rate * n), -(-n // 5)), n)
    # 5G LDPC needs k >= ~ 24 + a few info bits; below ~ 64 coded bits nothing useful fits.
    if n < 64 or k <= 24 + 8:
        raise ValueError(f"{num_symbols} symbols x {bits_per_symbol} bits give {coded} coded bits: "
                         f"too few for one LDPC codeword at rate {code_rate:.3f}")
    c = coded // n
    return CodewordLayout(k=k, n=n, num_codewords=c, bits_per_symbol=bits_per_symbol,
                          num_symbols=c * n // bits_per_symbol)


class BlerTable:
    """Codeword error rate versus CSNR per MCS (AWGN), from the committed JSON.

    :param data: ``{"meta": {...}, "curves": {label: {"csnr_db": [...], "bler": [...]}}}``

    Between grid points the BLER is interpolated linearly in ``log10`` (a straight waterfall);
    below the grid it is 1, above the last point it is the last value (an upper bound: the
    simulation stopped when it saw (almost) no errors).
    """

    def __init__(self, data: dict):
        self.meta = data.get("meta", {})
        self.curves = {lab: (list(map(float, c["csnr_db"])), list(map(float, c["bler"])))
                       for lab, c in data["curves"].items()}

    def bler(self, mcs: MCS, csnr_db: float) -> float:
        """Codeword error rate of ``mcs`` at ``csnr_db`` [dB]."""
        try:
            xs, ys = self.curves[mcs.label]
        except KeyError:
            raise ValueError(f"MCS {mcs.label} is not in the BLER table; known: {', '.join(self.curves)}") from None
        if csnr_db < xs[0]:
            return 1.0
        if csnr_db >= xs[-1]:
            return ys[-1]
        j = next(i for i in range(1, len(xs)) if xs[i] > csnr_db)
        floor = 1e-6  # zero-error points: interpolate towards a small value, not log(0)
        la, lb = math.log10(max(ys[j - 1], floor)), math.log10(max(ys[j], floor))
        t = (csnr_db - xs[j - 1]) / (xs[j] - xs[j - 1])
        return 10 ** (la + t * (lb - la))  # t < 1: xs[j] is the first grid point above csnr_db

    def required_csnr_db(self, mcs: MCS, target: float) -> float:
        """Smallest grid CSNR [dB] whose codeword BLER is <= ``target`` (``inf`` if none)."""
        xs, ys = self.curves[mcs.label]
        return next((x for x, y in zip(xs, ys) if y <= target), math.inf)


@lru_cache(maxsize=4)
def load_bler_table(path: str | Path = DEFAULT_TABLE) -> BlerTable:
    """Read a BLER table JSON (default: the committed one)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"BLER table {path} is missing; regenerate it with "
                         f"'python -m linksim.codecs.mcs --out {path}'")
    return BlerTable(json.loads(path.read_text()))


def select_mcs(csnr_db: float, num_symbols: int, target_bler: float = 0.1,
               table: BlerTable | None = None, candidates: tuple[MCS, ...] = MCS_TABLE,
               n_target: int = N_TARGET) -> MCS | None:
    """The highest-efficiency MCS whose image error rate at ``csnr_db`` is <= ``target_bler``.

    An image is lost when any of its ``C`` codewords fails: ``P = 1 - (1 - p_cw)^C`` with
    ``p_cw`` from ``table`` and ``C`` from :func:`codeword_layout` for ``num_symbols``.

    :output mcs: the chosen :class:`MCS`, or ``None`` when not even the most robust one meets the
        target (the transmitter then uses the most robust MCS and will likely be in outage)
    """
    table = table if table is not None else load_bler_table()
    best = None
    for mcs in candidates:
        try:
            lay = codeword_layout(num_symbols, mcs.bits_per_symbol, mcs.code_rate, n_target)
        except ValueError:
            continue
        p = table.bler(mcs, csnr_db)
        p_image = 1.0 - (1.0 - p) ** lay.num_codewords
        if p_image <= target_bler and (best is None or mcs.efficiency > best.efficiency):
            best = mcs
    return best


# --------------------------------------------------------------------- table generation (offline)
def _simulate_curve(mcs: MCS, n_target: int, num_iter: int, seed: int, step_db: float,
                    max_blocks: int, max_block_errors: int) -> dict:
    import torch

    from linksim.phy.ber import simulate_ber
    from linksim.phy.chains import DigitalChain
    from linksim.phy.conventions import csnr_db_to_no
    from linksim.phy.links import LinkConfig

    bps = mcs.bits_per_symbol
    n = n_target // bps * bps
    k = round(mcs.code_rate * n)
    chain = DigitalChain(LinkConfig(kind="awgn"), bps, k, n, num_codewords=1, crc="CRC24A",
                         num_iter=num_iter)
    # start at the Shannon limit of this efficiency: at n ~ 1e3 the BLER is ~1 there
    start = 10 * math.log10(2 ** mcs.efficiency - 1)
    start = math.floor(start / step_db) * step_db
    xs, ys = [], []
    csnr = start
    while True:
        gen = torch.Generator().manual_seed(seed)
        res = simulate_ber(chain, csnr_db_to_no(csnr), gen, batch_size=50, max_bit_errors=None,
                           max_block_errors=max_block_errors, max_blocks=max_blocks)
        xs.append(round(csnr, 3))
        ys.append(res.bler)
        print(f"  {mcs.label:10s} n={n} k={k} csnr={csnr:6.2f} dB  bler={res.bler:.4f} ({res.blocks} blocks)",
              flush=True)
        if res.block_errors == 0 or (res.bler < 2e-3 and len(ys) > 1):
            break
        csnr += step_db
    return {"n": n, "k": k, "csnr_db": xs, "bler": ys}


def main(argv: list[str] | None = None) -> None:
    """Simulate the BLER table (offline; ~ minutes on 2 CPU cores) and write it as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_TABLE))
    ap.add_argument("--n-target", type=int, default=N_TARGET)
    ap.add_argument("--num-iter", type=int, default=20)
    ap.add_argument("--step-db", type=float, default=0.5)
    ap.add_argument("--max-blocks", type=int, default=400)
    ap.add_argument("--max-block-errors", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="MCS labels to simulate (default: all)")
    ap.add_argument("--merge", nargs="*", default=None,
                    help="merge these partial tables (from --only runs) into --out instead of simulating")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        curves = {lab: c for part in parts for lab, c in part["curves"].items()}
        missing = [m.label for m in MCS_TABLE if m.label not in curves]
        if missing:
            raise SystemExit(f"partial tables lack {missing}")
        curves = {m.label: curves[m.label] for m in MCS_TABLE}
        meta = dict(parts[0]["meta"], seconds=sum(p["meta"]["seconds"] for p in parts))
        Path(args.out).write_text(json.dumps({"meta": meta, "curves": curves}, indent=1) + "\n")
        print(f"merged {len(parts)} tables into {args.out}")
        return
    todo = [m for m in MCS_TABLE if args.only is None or m.label in args.only]
    curves = {m.label: _simulate_curve(m, args.n_target, args.num_iter, args.seed, args.step_db,
                                       args.max_blocks, args.max_block_errors) for m in todo}
    meta = {"channel": "awgn", "n_target": args.n_target, "crc": "CRC24A", "num_iter": args.num_iter,
            "demapping": "app", "max_blocks": args.max_blocks, "max_block_errors": args.max_block_errors,
            "seed": args.seed, "step_db": args.step_db, "seconds": round(time.time() - t0, 1),
            "command": "python -m linksim.codecs.mcs --out codecs/mcs_bler_awgn.json"}
    Path(args.out).write_text(json.dumps({"meta": meta, "curves": curves}, indent=1) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
