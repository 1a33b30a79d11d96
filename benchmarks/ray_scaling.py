"""Sweep scaling of ``executor: ray``: wall time of one sweep with 1 and with 2 Ray workers on this
machine, alternated in one run, and the speed-up ``t(1 worker) / t(2 workers)`` (ideal: 2).

    OMP_NUM_THREADS=1 python benchmarks/ray_scaling.py --repeats 3

The sweep: ``--jobs`` Eb/N0 points of the 5G LDPC (k 512, n 1024) 16-QAM ``phy_ber`` study over a
moving TDL-C (30 m/s, LS estimation), a fixed number of blocks per point (no early stop, so every
job does the same work), ``threads: 1``. One local Ray instance with 2 CPUs serves every run
(started first and timed apart: ``ray_start_s``), so the times are the sweep's alone; each run
starts from an empty output folder. Workers stay warm between runs, as in a long session.
Results: ``benchmarks/results/ray_scaling.{csv,md}`` (one row per run, then the medians and the
ratio). No pass/fail threshold: on a shared 2-core machine the ratio drops below 2 when other
processes hold the cores; the load average is recorded beside it.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def _scenario(jobs: int, workers: int, blocks: int) -> dict:
    return {
        "name": "ray_scaling", "seed": 0, "device": "cpu",
        "channel": {"kind": "tdl", "tdl_model": "C", "speed": 30.0, "cp": 12, "data_symbols": 16,
                    "estimator": "ls"},
        "sweep": {"ebno_db": [float(e) for e in range(jobs)]},
        "methods": [{"name": "ldpc16qam", "kind": "phy_ber", "modulation": "16qam", "coding": "ldpc",
                     "k": 512, "n": 1024, "codewords": 4, "batch_size": 16, "max_block_errors": 10**9,
                     "max_bit_errors": None, "max_blocks": blocks}],
        "executor": "ray", "workers": workers, "threads": 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8, help="sweep points (jobs) per run")
    ap.add_argument("--blocks", type=int, default=64, help="codeword blocks per point")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    from linksim.executors import ray_init
    from linksim.runner import run_scenario
    from linksim.scenario import scenario_from_dict

    t = time.perf_counter()
    ray = ray_init(2)
    ray_start = time.perf_counter() - t
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: both workers import torch, Sionna and linksim once (not timed)
        run_scenario(scenario_from_dict(_scenario(2, 2, 16)), output=Path(tmp) / "warm")
        for rep in range(a.repeats):
            for workers in (1, 2):
                out = Path(tmp) / f"w{workers}_{rep}"
                t = time.perf_counter()
                run_scenario(scenario_from_dict(_scenario(a.jobs, workers, a.blocks)), output=out)
                rows.append({"repeat": rep, "workers": workers, "jobs": a.jobs, "blocks": a.blocks,
                             "wall_s": round(time.perf_counter() - t, 3), "load_1min": round(os.getloadavg()[0], 2)})
                print(rows[-1], flush=True)
    ray.shutdown()
    med = {w: statistics.median(r["wall_s"] for r in rows if r["workers"] == w) for w in (1, 2)}
    ratio = med[1] / med[2]
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "ray_scaling.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Ray sweep scaling (`benchmarks/ray_scaling.py`)",
        "",
        f"{a.jobs} jobs (phy_ber LDPC 16-QAM over TDL-C at 30 m/s, {a.blocks} blocks each), `threads: 1`, "
        f"{a.repeats} repeats alternated, one local Ray instance with 2 CPUs (start {ray_start:.1f} s, not "
        f"counted); python {platform.python_version()}, {os.cpu_count()} cores.",
        "",
        "| workers | median wall [s] |", "|---|---|",
        f"| 1 | {med[1]:.2f} |", f"| 2 | {med[2]:.2f} |",
        "",
        f"**Speed-up t(1) / t(2) = {ratio:.2f}** (ideal 2.00). Load average (1 min) during the runs: "
        f"{min(r['load_1min'] for r in rows):.1f}–{max(r['load_1min'] for r in rows):.1f}; per-run rows in "
        "`ray_scaling.csv`.",
        "",
    ]
    (OUT / "ray_scaling.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
