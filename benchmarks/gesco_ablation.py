"""GESCO's ablation in the paper's setting: FDS on/off x noisy training on/off, "PSNR" 1 / 10 / 100.

``transmit: paper`` adds the paper's σ (its "PSNR" table: 1 -> 0.9, 10 -> 0.36, 100 -> 0) straight
onto the one-hot maps (no channel uses: the paper's own setting, CBR not defined). The receiver is
the embedded SPADE diffusion model trained with noise (``embedded_noisy``) or on clean maps only
(``embedded_clean``), with or without the FDS block, the same model trained on FDS-processed maps
(``embedded_fds``), and the shipped receiver (``embedded``: that recipe with a wider UNet); the
score is the mIoU of the embedded segmenter on the generated scene against the sent map (mean over
scenes, 95 % t-interval). Scenes of seed 0 (the scenario's; no model or hyper-parameter was tuned
on them; the receiver's width was chosen on training scenes of seed 101)::

    python benchmarks/gesco_ablation.py                 # 16 scenes, 25 DDIM steps
    python benchmarks/gesco_ablation.py --scenes 4 --steps 10

Writes ``benchmarks/results/gesco_ablation.csv`` / ``.md`` (table) and ``.png`` (mIoU vs PSNR, one
line per variant, and one sample row per variant at PSNR 1).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

VARIANTS = [("FDS + noisy training", "embedded_noisy", True), ("noisy training only", "embedded_noisy", False),
            ("FDS only", "embedded_clean", True), ("neither", "embedded_clean", False),
            # FDS inside training too (configs/gesco_fds.yaml): the UNet learnt on FDS-processed maps
            ("FDS + noisy, FDS in training", "embedded_fds", True),
            # the shipped receiver (model: embedded): the row above with a wider UNet (configs/gesco_receiver.yaml)
            ("receiver: FDS + noisy, FDS in training, wider UNet", "embedded", True)]
PSNRS = (1, 10, 100)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    import pandas as pd
    from linksim.summary import t_interval

    from linksim.codecs.gesco.evaluation import paper_miou
    from linksim.codecs.gesco.scenes import colorize, scene_set
    from linksim.codecs.gesco.segmenter import load_segmenter
    from linksim.codecs.gesco.semantic import PAPER_SIGMA

    from linksim.codecs.gesco.method import EMBEDDED_MODELS

    variants = [v for v in VARIANTS if EMBEDDED_MODELS[v[1]].is_file()]
    missing = [v[0] for v in VARIANTS if v not in variants]
    scenes = scene_set(32, 64, args.scenes, seed=0)
    seg = load_segmenter()
    rows, samples = [], {}
    t_all = time.time()
    for label, model, fds_on in variants:
        for psnr in PSNRS:
            r = paper_miou(scenes, psnr, model=model, fds=fds_on, num_steps=args.steps, guidance=args.guidance,
                           segmenter=seg)
            v = r.miou.double()
            _, half, _ = t_interval(v.numpy())  # the one Student-t interval (summary.csv's)
            rows.append({"variant": label, "model": model, "fds": fds_on, "psnr_key": psnr, "sigma": PAPER_SIGMA[psnr],
                         "miou": float(v.mean()), "miou_ci95": half, "scenes": len(v), "nfe": r.nfe,
                         "seconds_per_scene": r.seconds / len(v)})
            print(f"{label:24s} PSNR {psnr:3d}: mIoU {v.mean():.3f} ± {half:.3f}", flush=True)
            if psnr == 1:
                samples[label] = r.images[:4]
    args.out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.out / "gesco_ablation.csv", index=False)
    seg_miou = load_segmenter_miou()
    pivot = df.pivot(index="variant", columns="psnr_key", values="miou").loc[[v[0] for v in variants]]
    lines = [f"# GESCO ablation (paper setting: σ on the maps), {args.scenes} scenes of seed 0, 32x64, "
             f"{args.steps} DDIM steps, CFG s={args.guidance:g}", "",
             f"mIoU of the embedded segmenter (its own held-out mIoU on clean scenes: {seg_miou}) on the generated "
             "scene vs the sent map; mean over scenes (± 95 % t-interval in the csv).", "",
             "| variant | " + " | ".join(f"PSNR {p} (σ={PAPER_SIGMA[p]})" for p in PSNRS) + " |",
             "|---|" + "---:|" * len(PSNRS)]
    for name, row in pivot.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{row[p]:.3f}" for p in PSNRS) + " |")
    if missing:
        lines += ["", f"Not run (their model is not shipped): {', '.join(missing)}."]
    lines += ["", f"Total {time.time() - t_all:.0f} s on 1 CPU thread (shared machine)."]
    (args.out / "gesco_ablation.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import textwrap

    fig = plt.figure(figsize=(11, 4.8))
    # left: the curves (room below for the two-line ticks and the label); right: sample strips whose
    # row labels (wrapped to two short lines) sit in the gap between the panels
    ax = fig.add_axes([0.06, 0.19, 0.34, 0.72])
    for label, _, _ in variants:
        d = df[df.variant == label].sort_values("psnr_key")
        ax.errorbar(d.psnr_key, d.miou, yerr=d.miou_ci95, marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(PSNRS, [f"{p}\n(σ={PAPER_SIGMA[p]})" for p in PSNRS])
    ax.set_xlabel('paper "PSNR" key')
    ax.set_ylabel("mIoU (generated vs sent map) ↑")
    ax.set_title("GESCO ablation, paper noise on the maps", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    n = len(variants) + 2
    for i, (title, imgs) in enumerate([("sent map", colorize(scenes.labels[:4])), ("original", scenes.images[:4])]
                                      + [(f"PSNR 1: {k}", v) for k, v in samples.items()]):
        a = fig.add_axes([0.56, 0.95 - (i + 1) * 0.9 / n, 0.42, 0.9 / n - 0.01])
        a.imshow(torch.cat(list(imgs.clamp(0, 1)), dim=2).permute(1, 2, 0).numpy())
        a.set_xticks([])
        a.set_yticks([])
        a.set_ylabel("\n".join(textwrap.wrap(title, 22)), rotation=0, ha="right", va="center", fontsize=7)
    fig.savefig(args.out / "gesco_ablation.png", dpi=130)
    print((args.out / "gesco_ablation.md").read_text())


def load_segmenter_miou() -> str:
    import json

    from linksim.codecs.gesco.segmenter import EMBEDDED_SEGMENTER

    meta = json.loads(EMBEDDED_SEGMENTER.with_suffix(".json").read_text())
    return f"{meta['heldout_miou']:.3f}"


if __name__ == "__main__":
    main()
