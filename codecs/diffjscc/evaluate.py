"""Held-out numbers and the grid of the embedded DiffJSCC (``python -m linksim.codecs.diffjscc.evaluate``).

For each CBR (1/384, 1/96) and AWGN CSNR (1, 10 dB): the held-out photos (coffee, chelsea, resized
and centre-cropped to 64x64, bicubic as the scenarios) are sent through the embedded stage-1 ResNet
JSCC and refined by the embedded refiner (50 DDIM steps, eta 0, colour fix). Prints PSNR of stage 1
and of the refined output, and the distance of each to the *other* photo's stage-1 decode (the
condition-swap check), and writes ``docs/img/diffjscc_grid.png``: per CBR/CSNR, rows original /
stage 1 / refined.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..images import embedded_photos, psnr, resize_center_crop
from ..jscc.adjscc import awgn_channel
from ..jscc.resnet import load_embedded_resnet
from .colorfix import wavelet_color_fix
from .pixel import load_pixel_refiner

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(out_png: str | Path = "docs/img/diffjscc_grid.png", size: int = 64, steps: int = 50, seed: int = 0):
    """:return: rows ``(cbr, csnr_db, image, psnr_stage1, psnr_refined)``"""
    from torchvision.utils import save_image

    photos = embedded_photos(["coffee", "chelsea"])
    x = torch.stack([resize_center_crop(photos[n], size, size) for n in ("coffee", "chelsea")])
    ref = load_pixel_refiner()
    rows, tiles = [], []
    for cbr in ("1/384", "1/96"):
        jscc = load_embedded_resnet(cbr)
        for snr in (1.0, 10.0):
            x1 = jscc(x, awgn_channel(torch.Generator().manual_seed(seed)), snr).clamp(0, 1)
            y = wavelet_color_fix(ref.refine(x1, snr, steps, generator=torch.Generator().manual_seed(seed)), x1).clamp(0, 1)
            for i, name in enumerate(("coffee", "chelsea")):
                rows.append((cbr, snr, name, float(psnr(x1[i:i + 1], x[i:i + 1])), float(psnr(y[i:i + 1], x[i:i + 1]))))
            tiles.append(torch.cat([x, x1, y]))
    # one column block per (CBR, CSNR): 3 rows (original / stage 1 / refined) x 2 photos
    grid = torch.cat([t.reshape(3, 2, 3, size, size).permute(1, 0, 2, 3, 4) for t in tiles], dim=0)
    grid = grid.permute(1, 0, 2, 3, 4).reshape(-1, 3, size, size)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, out_png, nrow=2 * len(tiles), padding=2, pad_value=1.0)
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    print("cbr   csnr  image    PSNR stage1  PSNR refined")
    for cbr, snr, name, p1, p2 in evaluate():
        print(f"{cbr:5s} {snr:4.0f}  {name:8s} {p1:8.2f} dB  {p2:8.2f} dB")
