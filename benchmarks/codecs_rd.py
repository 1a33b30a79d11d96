"""Rate-distortion curves and speed of the classical source codecs on the embedded images.

For every codec of ``linksim.codecs.classical.CODECS`` and every quality of a sub-grid, encode
and decode each image and record payload bpp (payload bits / (H·W), no container), RGB PSNR,
MS-SSIM (torchmetrics; needs a side > 160 pixels, else left empty) and the median encode /
decode time per image. Writes ``benchmarks/results/codecs_rd.csv`` (one row per codec x quality,
means over the images; appended with a run stamp) and ``benchmarks/results/codecs_rd.png``.

Usage::

    python benchmarks/codecs_rd.py --size 192 --limit 4
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from linksim.codecs.classical import get_codec
from linksim.data import load_images

GRIDS = {  # sub-grids spanning ~0.1 .. 4 bpp
    "hevc": (47, 42, 37, 32, 27, 22, 17),
    "vvc": (47, 42, 37, 32, 27, 22, 17),
    "jpeg": (5, 10, 20, 35, 50, 70, 85, 95),
    "jpeg2000": (22, 25, 28, 31, 34, 37, 40),
    "webp": (0, 10, 25, 45, 65, 80, 95),
}
RESULTS = Path(__file__).parent / "results"


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> float | None:
    """MS-SSIM of ``[3, H, W]`` images in [0, 1] (5 scales, Gaussian window 11); None if too small."""
    if min(x.shape[1:]) <= 160:
        return None
    try:
        from torchmetrics.functional.image import multiscale_structural_similarity_index_measure
    except ImportError:
        return None
    return float(multiscale_structural_similarity_index_measure(y[None], x[None], data_range=1.0))


def measure(name: str, images: torch.Tensor, qualities) -> list[dict]:
    codec = get_codec(name)
    h, w = images.shape[2:]
    rows = []
    for q in qualities:
        bpp, psnr, ssim, t_enc, t_dec = [], [], [], [], []
        for x in images:
            t0 = time.perf_counter()
            payload = codec.encode(x, q)
            t1 = time.perf_counter()
            y = codec.decode(payload, h, w)
            t2 = time.perf_counter()
            t_enc.append(t1 - t0)
            t_dec.append(t2 - t1)
            bpp.append(8 * len(payload) / (h * w))
            psnr.append(float(10 * torch.log10(1 / ((x - y) ** 2).mean())))
            s = ms_ssim(x, y)
            if s is not None:
                ssim.append(s)
        rows.append({
            "codec": name, "description": codec.description, "quality": q, "height": h,
            "width": w, "images": len(images), "bpp": np.mean(bpp), "psnr_db": np.mean(psnr),
            "ms_ssim": np.mean(ssim) if ssim else "", "encode_s": statistics.median(t_enc),
            "decode_s": statistics.median(t_dec),
        })
        print(f"{name:9s} q={q:3d}  bpp={rows[-1]['bpp']:.3f}  PSNR={rows[-1]['psnr_db']:.2f} dB  "
              f"MS-SSIM={rows[-1]['ms_ssim'] if not ssim else f'{np.mean(ssim):.4f}'}  "
              f"enc={1e3 * rows[-1]['encode_s']:.0f} ms  dec={1e3 * rows[-1]['decode_s']:.0f} ms")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_ssim = any(r["ms_ssim"] != "" for r in rows)
    fig, axes = plt.subplots(1, 2 if has_ssim else 1, figsize=(11 if has_ssim else 6, 4.2),
                             squeeze=False)
    for name in GRIDS:
        rs = sorted((r for r in rows if r["codec"] == name), key=lambda r: r["bpp"])
        if not rs:
            continue
        axes[0, 0].plot([r["bpp"] for r in rs], [r["psnr_db"] for r in rs], "o-", label=rs[0]["description"].split(":")[0])
        if has_ssim:
            axes[0, 1].plot([r["bpp"] for r in rs], [r["ms_ssim"] for r in rs], "o-")
    h, w, n = rows[0]["height"], rows[0]["width"], rows[0]["images"]
    axes[0, 0].set(xlabel="payload bpp", ylabel="RGB PSNR [dB]", title=f"{n} embedded images, {h}x{w}")
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].grid(alpha=0.3)
    if has_ssim:
        axes[0, 1].set(xlabel="payload bpp", ylabel="MS-SSIM")
        axes[0, 1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--codecs", nargs="*", default=list(GRIDS))
    args = ap.parse_args()
    images = load_images("embedded", size=args.size, limit=args.limit).images
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    print(f"codecs_rd: size={args.size} images={len(images)} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} host={platform.machine()} time={stamp}")
    rows = [r for name in args.codecs for r in measure(name, images, GRIDS[name])]
    RESULTS.mkdir(parents=True, exist_ok=True)
    csv_path = RESULTS / "codecs_rd.csv"
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["run", *rows[0].keys()])
        if new:
            writer.writeheader()
        for r in rows:
            writer.writerow({"run": stamp, **{k: (f"{v:.5g}" if isinstance(v, float) else v)
                                              for k, v in r.items()}})
    plot(rows, RESULTS / "codecs_rd.png")
    print(f"wrote {csv_path} and {RESULTS / 'codecs_rd.png'}")


if __name__ == "__main__":
    main()
