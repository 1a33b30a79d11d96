"""What the embedded DDPM prior has learned: samples beside real crops, and its denoising power.

Writes ``docs/img/prior_samples.png`` (left: random 32x32 training crops; right: ancestral samples
of the prior at the training resolution, respaced to ``--steps``; bottom: 64x64 samples — the
UNet is convolutional, and the receivers run it at the images' size) and prints/writes
``benchmarks/results/prior_denoise.csv``: the PSNR of the prior's one-step Tweedie estimate
``x̂0(x_t)`` of the held-out photos (coffee, chelsea at 64 px) at several ``t``, against the PSNR
of the noisy input rescaled by ``1/√ᾱ_t`` (what a prior-free estimate gives). HiFi-DiffCom
starts at ``t ≈ 215–256`` (CBR 1/48), so the gain there is what the prior adds to a JSCC decode::

    python benchmarks/prior_samples.py [--prior embedded] [--count 64] [--steps 100]
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default="embedded")
    ap.add_argument("--count", type=int, default=64, help="samples at the training crop size")
    ap.add_argument("--steps", type=int, default=100, help="respaced reverse steps")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "prior_embedded.yaml",
                    help="the prior's training config (its corpus, crop and held-out photos)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "prior_samples.png")
    ap.add_argument("--csv", type=Path, default=ROOT / "benchmarks" / "results" / "prior_denoise.csv")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    from linksim.codecs.diffusion.method import load_prior
    from linksim.codecs.diffusion.training import load_prior_train_config, sample_images, training_images
    from linksim.codecs.images import EMBEDDED_HOLDOUT, embedded_photos, psnr, resize_center_crop
    from linksim.codecs.jscc.training import CropSampler

    prior = load_prior(args.prior)
    data = load_prior_train_config(args.config).data
    crop = data.crop
    g = torch.Generator().manual_seed(args.seed)
    real = CropSampler(training_images(data), crop, torch.Generator().manual_seed(args.seed))(args.count)
    fake = (sample_images(prior, args.count, crop, args.steps, g) + 1) / 2
    big = (sample_images(prior, 8, 64, args.steps, g) + 1) / 2
    nrow = max(1, math.isqrt(args.count))

    def show(ax, images, n, title):
        ax.imshow(make_grid(images, nrow=n, padding=1, pad_value=1).permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=9)
        ax.axis("off")

    fig = plt.figure(figsize=(10, 7.2))
    show(fig.add_axes([0.0, 0.3, 0.49, 0.66]), real, nrow, f"training crops ({crop}x{crop})")
    show(fig.add_axes([0.51, 0.3, 0.49, 0.66]), fake, nrow, f"prior samples ({crop}x{crop}, {args.steps} steps)")
    show(fig.add_axes([0.0, 0.0, 1.0, 0.27]), big, 8, "prior samples at 64x64")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    plt.close(fig)

    photos = embedded_photos(EMBEDDED_HOLDOUT)
    x0 = torch.stack([resize_center_crop(im, 64, 64) for im in photos.values()]) * 2 - 1
    rows = []
    with torch.no_grad():
        for t in (50, 100, 235, 400, 600):
            a = float(prior.alphas_cumprod[t])
            x_t = a**0.5 * x0 + (1 - a) ** 0.5 * torch.randn(x0.shape, generator=g)
            tt = torch.full((x0.shape[0],), t, dtype=torch.long)
            est = prior.predict_x0(x_t, tt, prior.eps(x_t, tt)).clamp(-1, 1)
            naive = (x_t / a**0.5).clamp(-1, 1)
            rows.append({"t": t, "alpha_bar": round(a, 4),
                         "psnr_prior_db": round(float(psnr((est + 1) / 2, (x0 + 1) / 2).mean()), 2),
                         "psnr_noisy_db": round(float(psnr((naive + 1) / 2, (x0 + 1) / 2).mean()), 2)})
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(r)
    print(f"figure: {args.figure}\ntable: {args.csv}")
    return rows


if __name__ == "__main__":
    main()
