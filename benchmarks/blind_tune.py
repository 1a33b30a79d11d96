"""Tune Blind-DiffCom's step sizes (lr_x, lr_h) for the flagship scenario on TRAINING images only.

The flagship (``scenarios/fading_ofdm.yaml``) evaluates coffee and chelsea (held out of every
training); the quickstart, ``separation_awgn`` and the tests evaluate astronaut, coffee, chelsea
and rocket. The tuning set is therefore the rest of the embedded training corpus that nothing
evaluates: ``immunohistochemistry``, ``retina``, ``stereo_motorcycle`` (64x64 centre crops),
at the flagship's link (OFDM, 8 taps, decay 4, CP 12, one pilot OFDM symbol that Blind-DiffCom
never reads), 10 dB, CBR 1/48, 300 steps, ζ = 1, with ``--draws`` channel draws per image.

For each (lr_x, lr_h) on the grid: mean tap NMSE, success ratio (NMSE < 0.1) and mean PSNR.
The pick: highest success ratio, ties broken by mean PSNR. Writes
``benchmarks/results/blind_tune.csv`` (+ ``.md``).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/blind_tune.py --threads 1
"""

from __future__ import annotations

import argparse
import csv
import itertools
import time
from pathlib import Path

import torch

from linksim.codecs.base import RxSignal
from linksim.codecs.diffusion.blind import SUCCESS_NMSE, BlindDiffCom
from linksim.codecs.diffusion.method import load_prior
from linksim.codecs.images import EMBEDDED_HOLDOUT, embedded_array, psnr, resize_center_crop, to_tensor
from linksim.codecs.jscc.adjscc import load_embedded
from linksim.phy.chains import AnalogChain
from linksim.phy.links import LinkConfig
from linksim.phy.multipath import pdp

TUNING_IMAGES = ("immunohistochemistry", "retina", "stereo_motorcycle")
OUT = Path(__file__).parent / "results" / "blind_tune.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, nargs="+", default=[0.83, 2.5, 5.0])
    ap.add_argument("--lr-h", type=float, nargs="+", default=[0.2, 1.0, 5.0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--csnr", type=float, default=10.0)
    ap.add_argument("--draws", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    assert not set(TUNING_IMAGES) & set(EMBEDDED_HOLDOUT)
    images = torch.stack([resize_center_crop(to_tensor(embedded_array(n)), 64, 64) for n in TUNING_IMAGES])
    images = images.repeat(args.draws, 1, 1, 1)
    jscc, prior = load_embedded("1/48"), load_prior("embedded")
    cfg = LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=16, pilot_symbols=1,
                     estimator="lmmse", equalizer="mmse")
    with torch.no_grad():
        x = jscc.encode(images, args.csnr)
    chain = AnalogChain(cfg, x.shape[1])
    y, state = chain(x, 10 ** (-args.csnr / 10), torch.Generator().manual_seed(100))
    rx = RxSignal(y=y, state=state, tx_meta={"tx_scale": None})
    rows = []
    for lr, lr_h in itertools.product(args.lr, args.lr_h):
        t0 = time.perf_counter()
        r = BlindDiffCom(prior, jscc, args.csnr, (64, 64), pdp(8, 4.0), num_steps=args.steps, lr=lr, lr_h=lr_h)
        d = r.decode(rx, generator=torch.Generator().manual_seed(7))
        nmse = d.extras["channel_nmse"]
        p = psnr(d.images, images)
        row = {"lr": lr, "lr_h": lr_h, "steps": args.steps, "csnr_db": args.csnr, "images": len(images),
               "nmse_mean": float(nmse.mean()), "nmse_median": float(nmse.median()),
               "success_ratio": float((nmse < SUCCESS_NMSE).float().mean()), "psnr_mean": float(p.mean()),
               "nmse": " ".join(f"{v:.3f}" for v in nmse.tolist()), "psnr": " ".join(f"{v:.1f}" for v in p.tolist()),
               "seconds": round(time.perf_counter() - t0, 1)}
        print(row, flush=True)
        rows.append(row)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    best = max(rows, key=lambda r: (r["success_ratio"], r["psnr_mean"]))
    lines = ["| lr_x | lr_h | success | NMSE mean | NMSE per image | PSNR mean | s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = " **(pick)**" if r is best else ""
        lines.append(f"| {r['lr']} | {r['lr_h']}{mark} | {r['success_ratio']:.2f} | {r['nmse_mean']:.3f} | "
                     f"{r['nmse']} | {r['psnr_mean']:.2f} | {r['seconds']} |")
    head = (f"Blind-DiffCom step-size tuning on training images {', '.join(TUNING_IMAGES)} (64x64, OFDM 8 taps, "
            f"{args.csnr:g} dB, CBR 1/48, {args.steps} steps, {args.draws} draw(s)); success = NMSE < {SUCCESS_NMSE}.\n\n")
    args.output.with_suffix(".md").write_text(head + "\n".join(lines) + "\n")
    print(f"pick: lr_x {best['lr']} lr_h {best['lr_h']}")


if __name__ == "__main__":
    main()
