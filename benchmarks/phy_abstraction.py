"""PHY abstraction (``phy: abstract``, Sionna SYS) vs bit-true 5G LDPC decoding: agreement and speed.

One MCS of 38.214 table 1 (default 13: 16-QAM 490/1024) with code blocks of ``k = 500`` bits (a
CBS of Sionna's tables; CRC24A inside k, n = ceil(k / r) to whole symbols) and 8 codewords per
frame, over AWGN and over a 3GPP TDL-C channel (OFDM, 100 ns delay spread, LMMSE estimation from
one pilot symbol, MMSE equalisation). At every CSNR both receivers see the *same* realisations and
noise: the bit-true one demaps and runs 20 BP iterations; the abstract one takes 1 / no_eff of each
codeword's symbols, EESM, and Sionna's BLER table (its expected BLER is reported, which has no draw
noise; ``phy: abstract`` draws the errors from it).

Every CSNR point uses the same frames (bits, channel realisations and unit noise, scaled to the
point's N0): common random numbers, so the BLER curves are monotone and the cliff is not moved by
which fades a point happened to draw. Reported per channel: BLER of both at every point (on AWGN
also at the table's own grid points), the cliff (the CSNR where the BLER crosses 0.1, log-linear
interpolation) of both and its difference (target |Δ| <= 0.3 dB) with a 95 % bootstrap interval
over frames (on TDL a frame's codewords share one fade, so frames, not codewords, are the
independent draws), and the speed ratio: wall time of the bit-true receiver / wall time of the
abstract receiver over the same frames, measured in this run (the link simulation, common to
both, is timed apart).

    .venv/bin/python benchmarks/phy_abstraction.py [--frames 40] [--threads 1]

Writes ``benchmarks/results/phy_abstraction.csv`` (one row per channel x CSNR) and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from linksim.phy.abstraction import NR_TABLE1, PhyAbstraction
from linksim.phy.chains import DigitalChain
from linksim.phy.conventions import csnr_db_to_no
from linksim.phy.links import LinkConfig

RESULTS = Path(__file__).parent / "results"
K, C, TARGET = 500, 8, 0.1
TABLE_SNR = [-5.0 + i * 25.0 / 14 for i in range(15)]  # the SNR grid of Sionna's BLER tables [dB]


def cliff_db(xs, ys, target=TARGET):
    """CSNR where the BLER curve first falls to ``target`` (log-linear between grid points)."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 > target >= y1:
            l0, l1 = math.log10(max(y0, 1e-4)), math.log10(max(y1, 1e-4))
            return x0 + (math.log10(target) - l0) / (l1 - l0) * (x1 - x0)
    return math.nan


def measure(cfg: LinkConfig, mcs: int, csnrs, frames: int, seed: int):
    bps, r1024 = NR_TABLE1[mcs]
    n = math.ceil(K / (r1024 / 1024) / bps) * bps
    chain = DigitalChain(cfg, bps, K, n, num_codewords=C, crc="CRC24A")
    abstraction = PhyAbstraction()
    rows, t_bit, t_abs, err_bit, p_abs = [], 0.0, 0.0, [], []
    for csnr in csnrs:
        g = torch.Generator().manual_seed(seed)
        bits = torch.randint(0, 2, (frames, chain.num_info_bits), generator=g).float()
        real_seed = seed + 1  # the same frames at every point (common random numbers)
        with torch.no_grad():
            realization = chain.generate(frames, torch.Generator().manual_seed(real_seed))
            llr, state = chain.transmit(bits, realization, csnr_db_to_no(csnr), torch.Generator().manual_seed(real_seed))
            t = time.perf_counter()
            _, ok = chain.decode(llr)
            t_bit += time.perf_counter() - t
            t = time.perf_counter()
            per_cw = n // bps
            sinr = (1.0 / state.no_eff.real[:, : C * per_cw]).reshape(frames, C, per_cw)
            p = abstraction.bler(mcs, K, abstraction.effective_sinr(sinr, mcs))
            t_abs += time.perf_counter() - t
        rows.append({"csnr_db": round(csnr, 3), "bler_bit_true": float((~ok).float().mean()),
                     "bler_abstract": float(p.mean()), "codewords": frames * C})
        err_bit.append((~ok).float().reshape(frames, C).mean(1).numpy())
        p_abs.append(p.reshape(frames, C).mean(1).numpy())
    return rows, t_bit, t_abs, n, np.stack(err_bit), np.stack(p_abs)


def cliff_interval(xs, err_bit, p_abs, repeats=400, seed=0):
    """95 % bootstrap interval of cliff(abstract) - cliff(bit-true) over frames: ``err_bit`` and
    ``p_abs`` are ``[points, frames]`` per-frame BLERs of the same frames at every point."""
    rng = np.random.default_rng(seed)
    frames = err_bit.shape[1]
    diffs = []
    for _ in range(repeats):
        idx = rng.integers(0, frames, frames)
        d = cliff_db(xs, list(p_abs[:, idx].mean(1))) - cliff_db(xs, list(err_bit[:, idx].mean(1)))
        if not math.isnan(d):
            diffs.append(d)
    return (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))) if diffs else (math.nan, math.nan)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="frames of 8 codewords per CSNR point")
    ap.add_argument("--mcs", type=int, default=13)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    bps, r1024 = NR_TABLE1[args.mcs]
    shannon = 10 * math.log10(2 ** (bps * r1024 / 1024) - 1)
    channels = {
        "awgn": (LinkConfig(kind="awgn"), sorted(set(np.round(np.arange(shannon + 0.5, shannon + 3.01, 0.25), 3))
                                                 | {round(x, 3) for x in TABLE_SNR if shannon < x < shannon + 4})),
        "tdl-C": (LinkConfig(kind="tdl", tdl_model="C", delay_spread=100e-9, data_symbols=16),
                  list(np.round(np.arange(shannon + 1.0, shannon + 12.01, 0.5), 3))),
    }
    out, summary = [], []
    for name, (cfg, csnrs) in channels.items():
        t0 = time.perf_counter()
        rows, t_bit, t_abs, n, err_bit, p_abs = measure(cfg, args.mcs, csnrs, args.frames, args.seed)
        xs = [r["csnr_db"] for r in rows]
        c_bit = cliff_db(xs, [r["bler_bit_true"] for r in rows])
        c_abs = cliff_db(xs, [r["bler_abstract"] for r in rows])
        lo, hi = cliff_interval(xs, err_bit, p_abs)
        dbler = [abs(r["bler_abstract"] - r["bler_bit_true"]) for r in rows if 0.01 <= r["bler_bit_true"] <= 0.9]
        summary.append({"channel": name, "n": n, "cliff_bit_true_db": c_bit, "cliff_abstract_db": c_abs,
                        "cliff_diff_db": c_abs - c_bit, "diff_lo": lo, "diff_hi": hi,
                        "max_abs_dbler": max(dbler) if dbler else math.nan,
                        "t_bit_true_s": t_bit, "t_abstract_s": t_abs,
                        "speed_ratio": t_bit / t_abs, "wall_s": time.perf_counter() - t0, "rows": rows})
        for r in rows:
            out.append({"channel": name, "mcs": args.mcs, "k": K, "n": n, **r,
                        "table_point": any(abs(r["csnr_db"] - x) < 1e-3 for x in TABLE_SNR) and name == "awgn"})
        print(f"{name}: cliff bit-true {c_bit:.2f} dB, abstract {c_abs:.2f} dB (diff {c_abs - c_bit:+.2f}, "
              f"95 % [{lo:+.2f}, {hi:+.2f}]); "
              f"decode {t_bit:.1f} s vs {t_abs:.3f} s -> speed ratio {t_bit / t_abs:.0f}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "phy_abstraction.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# PHY abstraction vs bit-true decoding ({when}, {platform.machine()}, {args.threads} thread, "
             f"shared 2-core machine)", "",
             f"MCS {args.mcs} of 38.214 table 1 ({bps} bits/symbol, rate {r1024}/1024), k = {K} (CRC24A inside), "
             f"{C} codewords per frame, {args.frames} frames per point; the same realisations and noise for both. "
             "Abstract = EESM + Sionna's BLER table (expected BLER). Speed ratio = bit-true decode time / "
             "abstract time over the same frames, this run.", "",
             "| channel | n | cliff (BLER 0.1) bit-true [dB] | abstract [dB] | difference [dB] | 95 % interval "
             "(bootstrap over frames) [dB] | speed ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(f"| {s['channel']} | {s['n']} | {s['cliff_bit_true_db']:.2f} | {s['cliff_abstract_db']:.2f} | "
                     f"{s['cliff_diff_db']:+.2f} | [{s['diff_lo']:+.2f}, {s['diff_hi']:+.2f}] | "
                     f"{s['speed_ratio']:.0f}x |")
    lines += ["", "Verdict (target: cliff within 0.3 dB): " + "; ".join(
        f"{s['channel']} {'within' if abs(s['cliff_diff_db']) <= 0.3 else 'OUTSIDE'} "
        f"({s['cliff_diff_db']:+.2f} dB, largest |BLER difference| {s['max_abs_dbler']:.3f} over the points where "
        f"the bit-true BLER is 0.01-0.9)" for s in summary) + ". On a block-fading channel the BLER curve is shallow "
        "(about a decade per 10 dB), so a small BLER bias moves the 0.1 crossing by several tenths of a dB."]
    for s in summary:
        lines += ["", f"## {s['channel']}", "", "| CSNR [dB] | BLER bit-true | BLER abstract | table point |",
                  "|---:|---:|---:|:---:|"]
        for r in s["rows"]:
            tp = "yes" if s["channel"] == "awgn" and any(abs(r["csnr_db"] - x) < 1e-3 for x in TABLE_SNR) else ""
            lines.append(f"| {r['csnr_db']:.2f} | {r['bler_bit_true']:.3f} | {r['bler_abstract']:.3f} | {tp} |")
    (RESULTS / "phy_abstraction.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
