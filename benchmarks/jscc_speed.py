"""ADJSCC encode / decode throughput (images per second), CPU and (if present) CUDA.

Cases: batch 1 and 16, 32x32 and 256x256, the embedded model size (C=2, F=48) and the paper size
(C=2, F=256). One CSV row per case (device, filters, size, batch, encode_ips, decode_ips).

    python benchmarks/jscc_speed.py [--out benchmarks/results/jscc_speed.csv] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from linksim.codecs.jscc.adjscc import ADJSCC


def _time(fn, device, min_seconds=1.0, max_iters=50) -> float:
    """Seconds per call (after one warm-up call), averaged over >= min_seconds or max_iters calls."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        el = time.perf_counter() - t0
        if el >= min_seconds or n >= max_iters:
            return el / n


@torch.no_grad()
def run(quick: bool = False) -> list[dict]:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for filters in (48, 256):
            torch.manual_seed(0)
            model = ADJSCC(channels=2, filters=filters).to(device).eval()
            for size in (32, 256):
                for batch in (1, 16):
                    if quick and device.type == "cpu" and filters == 256 and size == 256 and batch == 16:
                        continue  # ~10 s per call on 2 CPU cores
                    x = torch.rand(batch, 3, size, size, device=device)
                    sym = model.encode(x, 10.0)
                    t_enc = _time(lambda: model.encode(x, 10.0), device, max_iters=5 if device.type == "cpu" else 50)
                    t_dec = _time(lambda: model.decode(sym, 10.0), device, max_iters=5 if device.type == "cpu" else 50)
                    row = {"device": device.type, "threads": torch.get_num_threads(), "channels": 2, "filters": filters,
                           "size": size, "batch": batch, "encode_ips": round(batch / t_enc, 2),
                           "decode_ips": round(batch / t_dec, 2)}
                    print(row, file=sys.stderr)
                    rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/results/jscc_speed.csv")
    p.add_argument("--quick", action="store_true", help="skip the slowest CPU case")
    a = p.parse_args()
    rows = run(a.quick)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(out)


if __name__ == "__main__":
    main()
