"""Reading and resizing images: the one implementation shared by the engine and the trainings.

The scenario loader (:func:`linksim.data.load_images`) and the JSCC / prior trainings
(``codecs/jscc/training.py``, ``codecs/diffusion/training.py``) read the same photographs. Imports
point engine -> codecs -> phy, so the reading lives here, below both; the engine adds its policy
(``DataError`` messages, ``on_error``, ``limit``, ``names``) on top.

Conventions: an image tensor is ``[3, H, W]`` float32, RGB in [0, 1]; a decoded array is
``[H, W, 3]`` uint8. Errors are ``ValueError`` (unusable image) or ``FileNotFoundError`` (missing
folder / no image files); the engine wraps them.

**Embedded photos**: colour photographs inside scikit-image's ``skimage.data`` (no download), free
of copyright restrictions according to skimage's docstrings: ``astronaut`` (NASA, public domain),
``coffee`` (CC0, Rachel Michetti), ``chelsea`` (CC0, Stefan van der Walt), ``rocket`` (SpaceX,
public domain), ``hubble_deep_field`` (NASA, public domain), ``immunohistochemistry`` (no known
restrictions), ``retina`` (CC0); the trainings also use ``stereo_motorcycle`` (left view; Middlebury
2014 stereo benchmark, no licence stated in skimage's docstring).

**Files** (Pillow): grayscale is replicated to RGB, alpha (RGBA, LA, palette transparency) is
composited on white, 16-bit grayscale is scaled (not clipped) to 8 bits. The EXIF orientation tag
is not applied (pixels are used as stored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# reading files and the corpus lists are torch-free (the scenario validator decodes every file
# without torch, `linksim validate`); re-exported here
from .image_files import (EMBEDDED_HOLDOUT, EMBEDDED_IMAGES, EMBEDDED_PHOTOS, IMAGE_SUFFIXES,  # noqa: F401
                          embedded_array, folder_files, pil_to_rgb, read_file)

__all__ = [
    "EMBEDDED_IMAGES", "EMBEDDED_PHOTOS", "EMBEDDED_HOLDOUT", "IMAGE_SUFFIXES",
    "embedded_array", "read_file", "pil_to_rgb", "to_tensor", "folder_files",
    "embedded_photos", "folder_photos", "resize_center_crop", "rescale", "psnr",
]

def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``[H, W]`` / ``[H, W, C]`` uint8 -> ``[3, H, W]`` float32 in [0, 1] (a copy).

    Gray (C = 1) is replicated to RGB; gray+alpha / RGBA (C = 2, 4) are composited on white.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] in (2, 4):  # composite alpha on white
        rgb, alpha = a[..., :-1].astype(np.float32), a[..., -1:].astype(np.float32) / 255
        a = np.round(rgb * alpha + 255 * (1 - alpha)).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1).float().div_(255)


def embedded_photos(names=EMBEDDED_PHOTOS) -> dict[str, torch.Tensor]:
    """Embedded photos as ``{name: [3, H, W] float32 in [0, 1]}``, in the order of ``names``."""
    return {name: to_tensor(embedded_array(name)) for name in names}


def folder_photos(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every image of :func:`folder_files` as ``{name: [3, H, W] float32 in [0, 1]}``.

    :raises FileNotFoundError: see :func:`folder_files`
    :raises ValueError: a file cannot be decoded (the message names it)
    """
    out = {}
    for name, path in folder_files(folder):
        try:
            out[name] = to_tensor(read_file(path))
        except (OSError, ValueError, SyntaxError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path}: {msg}") from None
    return out


# ---- resizing ------------------------------------------------------------------------------------
def resize_center_crop(image: torch.Tensor, height: int, width: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize (antialiased) so the image covers ``height`` x ``width``, then crop the centre.

    The scenarios use ``bicubic`` (:func:`linksim.data.load_images`), the JSCC training's held-out
    images ``bilinear`` (its reported PSNRs were measured so); an image already of the output size
    is returned as is (an antialiased resize to the same size is the identity anyway).

    :param image: ``[3, h, w]`` float32 in [0, 1]
    :param mode: ``torch.nn.functional.interpolate`` mode (``bicubic`` or ``bilinear``)
    :return: ``[3, height, width]`` float32 in [0, 1], contiguous
    """
    _, h, w = image.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        # bicubic overshoots: clamp back to [0, 1]
        image = F.interpolate(image[None], size=(new_h, new_w), mode=mode,
                              antialias=True, align_corners=False)[0].clamp_(0, 1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return image[:, top:top + height, left:left + width].contiguous()


def rescale(image: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize by ``scale`` (antialiased bilinear; output side ``floor(side * scale)``).

    The trainings' multi-scale corpus: crops of a downscaled photo see whole-scene structure.

    :param image: ``[3, H, W]`` float32 in [0, 1]
    :return: ``[3, floor(H * scale), floor(W * scale)]`` float32 in [0, 1] (``image`` itself at scale 1)
    """
    if scale == 1.0:
        return image
    return F.interpolate(image[None], scale_factor=scale, mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(0, 1)


# ---- quality -------------------------------------------------------------------------------------
def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR [dB] per image, data range 1, MSE floored at 1e-10 (identical images: 100 dB, not inf).

    The trainings' evaluation metric; the scenarios' ``psnr`` metric is :mod:`linksim.metrics`
    (torchmetrics, inf for identical images).

    :param x, y: ``[B, ...]`` float in [0, 1]
    :return: ``[B]`` = ``-10 log10(mean((x - y)^2))`` over all but the first dimension
    """
    mse = (x - y).square().flatten(1).mean(1).clamp_min(1e-10)
    return -10.0 * torch.log10(mse)
