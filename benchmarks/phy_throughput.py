"""Throughput of :class:`linksim.phy.DigitalChain` vs the same Sionna blocks called by hand.

Cases: 16-QAM, 5G LDPC k=512 n=1024 (rate 1/2, 20 BP iterations, no CRC, Eb/N0 10 dB), over AWGN and over
OFDM (exp-PDP multipath, LS estimation, LMMSE equalisation; raw reference: Sionna
``OFDMChannel`` + ``LSChannelEstimator`` + ``LMMSEEqualizer`` on the same resource grid and
channel model). Ours includes drawing the channel each call (``chain(bits, no, generator)``).
Both run in this process on the same bits, interleaved (ours, raw, ours, ...), median of the
repeats; the ratio ours/raw is the number to watch (target >= 0.9). The LDPC decoder's share is
its time on our chain's LLRs over our total time. No pass/fail threshold.

    .venv/bin/python benchmarks/phy_throughput.py [--batch 32] [--repeats 7] [--device cpu] [--threads 1]

Appends one row per case to ``benchmarks/results/phy_throughput.csv``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import statistics
import time
from pathlib import Path

import sionna
import torch
from sionna.phy.channel import AWGN, OFDMChannel
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Demapper, Mapper
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import LMMSEEqualizer, LSChannelEstimator, ResourceGridMapper

from linksim.phy import DigitalChain, LinkConfig, ebnodb_to_no
from linksim.phy.multipath import ExpDecayPDP

K, N, BPS, NUM_ITER, EBNO_DB = 512, 1024, 4, 20, 10.0
CSV = Path(__file__).parent / "results" / "phy_throughput.csv"


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(fn, device, warmup=1, repeats=7):
    """Median wall time [s] of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def raw_awgn(device, num_codewords):
    enc = LDPC5GEncoder(K, N, num_bits_per_symbol=BPS, device=device)
    dec = LDPC5GDecoder(enc, num_iter=NUM_ITER, hard_out=True, device=device)
    mapper, demapper = Mapper("qam", BPS, device=device), Demapper("app", "qam", BPS, device=device)
    awgn = AWGN(device=device)

    def run(bits, no):
        b = bits.reshape(bits.shape[0], num_codewords, K)
        x = mapper(enc(b).reshape(bits.shape[0], -1))
        y = awgn(x, no)
        llr = demapper(y, no).reshape(bits.shape[0], num_codewords, N)
        return dec(llr)

    return run


class _GlobalRngPDP(ExpDecayPDP):
    """Our exp-PDP model with a fixed generator, so Sionna's OFDMChannel can call it as is."""

    def __call__(self, batch_size, num_time_steps=1, sampling_frequency=None, generator=None):
        return super().__call__(batch_size, num_time_steps, sampling_frequency, generator or self.g)


def raw_ofdm(device, chain, num_codewords):
    link = chain.link
    rg = link.resource_grid
    m = link.channel_model
    model = _GlobalRngPDP(m.paths, m.decay, m.bandwidth, device=device)
    model.g = torch.Generator(device=device).manual_seed(1)
    enc = LDPC5GEncoder(K, N, num_bits_per_symbol=BPS, device=device)
    dec = LDPC5GDecoder(enc, num_iter=NUM_ITER, hard_out=True, device=device)
    mapper, demapper = Mapper("qam", BPS, device=device), Demapper("app", "qam", BPS, device=device)
    rg_mapper = ResourceGridMapper(rg, device=device)
    channel = OFDMChannel(model, rg, add_awgn=True, normalize_channel=False, device=device)
    est = LSChannelEstimator(rg, interpolation_type="nn", device=device)
    eq = LMMSEEqualizer(rg, StreamManagement([[1]], 1), device=device)

    def run(bits, no):
        bsz = bits.shape[0]
        b = bits.reshape(bsz, num_codewords, K)
        x = mapper(enc(b).reshape(bsz, 1, 1, -1))
        y = channel(rg_mapper(x), no)
        h_hat, err_var = est(y, no)
        x_hat, no_eff = eq(y, h_hat, err_var, no)
        llr = demapper(x_hat, no_eff).reshape(bsz, num_codewords, N)
        return dec(llr)

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="examples per call")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's); 1 is faster on a shared 2-core box")
    args = ap.parse_args(argv)
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device={device} ({platform.processor() or platform.machine()}) threads={torch.get_num_threads()} "
          f"torch={torch.__version__} sionna={sionna.__version__} batch={args.batch} "
          f"16qam ldpc k={K} n={N} iter={NUM_ITER} ebno={EBNO_DB}dB repeats={args.repeats}")
    no = ebnodb_to_no(EBNO_DB, BPS, K / N)
    cases = {
        "awgn": (LinkConfig(kind="awgn"), 2),
        "ofdm_ls_lmmse": (LinkConfig(kind="ofdm", subcarriers=64, data_symbols=8, pilot_symbols=1,
                                     estimator="ls", equalizer="mmse", interleave=False), 2),
    }
    rows = []
    print(f"{'case':<15}{'ours kbit/s':>12}{'raw kbit/s':>12}{'ours/raw':>10}{'ldpc share':>12}{'BER ours':>10}")
    for name, (cfg, num_cw) in cases.items():
        try:
            chain = DigitalChain(cfg, BPS, K, N, num_codewords=num_cw, crc=None, device=device,
                                 num_iter=NUM_ITER)
            raw = raw_awgn(device, num_cw) if cfg.kind == "awgn" else raw_ofdm(device, chain, num_cw)
        except Exception as exc:  # a case that cannot be built is logged and skipped
            print(f"{name:<15} skipped: {exc}")
            continue
        g = torch.Generator(device=device).manual_seed(0)
        bits = torch.randint(0, 2, (args.batch, chain.num_info_bits), generator=g, device=device).float()
        ours_t, raw_t, dec_t = [], [], []
        with torch.no_grad():
            rx = chain(bits, no, g)
            ber = (rx.bits_hat != bits).float().mean().item()
            llr = rx.llr
            for _ in range(args.repeats):  # interleave ours and raw so drifting load hits both
                ours_t += measure(lambda: chain(bits, no, g), device, warmup=0, repeats=1)
                raw_t += measure(lambda: raw(bits, no), device, warmup=0, repeats=1)
                dec_t += measure(lambda: chain.ldpc.decode(llr), device, warmup=0, repeats=1)
        info = args.batch * chain.num_info_bits
        ours, rawm, decm = (statistics.median(t) for t in (ours_t, raw_t, dec_t))
        row = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "case": name, "device": device,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "sionna": sionna.__version__,
            "batch": args.batch, "k": K, "n": N, "bps": BPS, "num_iter": NUM_ITER,
            "ours_kbps": round(info / ours / 1e3, 1), "raw_kbps": round(info / rawm / 1e3, 1),
            "ratio": round(rawm / ours, 3), "ldpc_share": round(decm / ours, 3), "ber": f"{ber:.2e}",
        }
        rows.append(row)
        print(f"{name:<15}{row['ours_kbps']:>12}{row['raw_kbps']:>12}{row['ratio']:>10}"
              f"{row['ldpc_share']:>12}{row['ber']:>10}")
    CSV.parent.mkdir(parents=True, exist_ok=True)
    new = not CSV.exists()
    with CSV.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["date"])
        if new:
            w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
