"""Does a DiffJSCC refiner use its condition? Measured on *training* photos only.

This is how the embedded refiner's ``prediction_type`` was chosen (issue 15): the held-out photos
(coffee, chelsea) are not touched here. Each non-held-out embedded photo is resized and
centre-cropped to 64x64 (bicubic, as the scenarios), sent through the embedded stage-1 ResNet JSCC
at CBR 1/96 over AWGN, and refined (DDIM, eta 0) with the *same* initial noise under its own and
under every other photo's stage-1 decode. Reported per refiner directory:

- ``own<other``: share of ordered pairs (i, j != i) with MSE(refined_i, s1_i) < MSE(refined_i, s1_j)
  (a refiner that ignores its condition scores ~0.5 or below);
- ``swap/noise``: mean MSE between outputs under two conditions (same noise) over the mean MSE
  between outputs under two noise draws (same condition): ~0 when the condition is ignored;
- PSNR of stage 1 and of the refined output (raw and after the wavelet colour fix) vs the original.

``python benchmarks/diffjscc_condition.py DIR [DIR ...] [--snr 10] [--steps 20]``
(DIR: a refiner directory, e.g. ``runs/<run>/ddpm``; default: the embedded one). One thread, ~15 s
per directory. Writes the table to ``benchmarks/results/diffjscc_condition.md`` (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from linksim.codecs.diffjscc.colorfix import wavelet_color_fix
from linksim.codecs.diffjscc.pixel import EMBEDDED_DDPM_DIR, load_pixel_refiner
from linksim.codecs.images import EMBEDDED_HOLDOUT, EMBEDDED_PHOTOS, embedded_photos, psnr, resize_center_crop
from linksim.codecs.jscc.adjscc import awgn_channel
from linksim.codecs.jscc.resnet import load_embedded_resnet


@torch.no_grad()
def measure(refiner_dir, snr: float = 10.0, steps: int = 20, cbr: str = "1/96", seed: int = 0) -> dict:
    names = [n for n in EMBEDDED_PHOTOS if n not in EMBEDDED_HOLDOUT]
    photos = embedded_photos(names)
    x = torch.stack([resize_center_crop(photos[n], 64, 64) for n in names])
    x1 = load_embedded_resnet(cbr)(x, awgn_channel(torch.Generator().manual_seed(seed)), snr).clamp(0, 1)
    ref = load_pixel_refiner(refiner_dir)
    n = len(names)

    def refine(cond, noise_seed):
        return ref.refine(cond, snr, steps, generator=torch.Generator().manual_seed(noise_seed))

    own = refine(x1, seed)
    # the same noise for every image of a batch draw: refine each condition j at image i's noise by
    # rolling the conditions (roll k gives image i the condition of i - k)
    hits, swap = 0, []
    d_own = (own - x1).square().mean(dim=(1, 2, 3))  # each refined image vs its own decode
    for k in range(1, n):
        rolled = refine(x1.roll(k, 0), seed)  # noise of image i, condition of image i-k
        d_other = (own - x1.roll(k, 0)).square().mean(dim=(1, 2, 3))  # own[i] vs decode (i-k)
        hits += int((d_own < d_other).sum())
        swap.append((rolled - own).square().mean(dim=(1, 2, 3)))
    other_noise = refine(x1, seed + 1000)
    noise_mse = (other_noise - own).square().mean()
    fixed = wavelet_color_fix(own, x1).clamp(0, 1)

    def mean_psnr(y):
        return float(torch.stack([psnr(y[i:i + 1], x[i:i + 1]) for i in range(n)]).mean())

    return {"dir": str(refiner_dir), "images": n, "own<other": hits / (n * (n - 1)),
            "swap/noise": float(torch.cat(swap).mean() / noise_mse),
            "psnr_stage1": mean_psnr(x1), "psnr_refined": mean_psnr(own), "psnr_colourfix": mean_psnr(fixed)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="*", default=[str(EMBEDDED_DDPM_DIR)])
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cbr", default="1/96")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "diffjscc_condition.md")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    lines = [f"# DiffJSCC refiners: condition use on the training photos (CBR {a.cbr}, AWGN {a.snr:g} dB, "
             f"{a.steps} DDIM steps)", "",
             "| refiner | own<other | swap/noise | PSNR stage 1 | PSNR refined | PSNR colour fix |",
             "| --- | --- | --- | --- | --- | --- |"]
    for d in a.dirs:
        r = measure(d, a.snr, a.steps, a.cbr)
        lines.append(f"| {r['dir']} | {r['own<other']:.2f} | {r['swap/noise']:.2f} | {r['psnr_stage1']:.2f} | "
                     f"{r['psnr_refined']:.2f} | {r['psnr_colourfix']:.2f} |")
        print(lines[-1], flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(a.out.read_text())


if __name__ == "__main__":
    main()
