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

import errno
import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "EMBEDDED_IMAGES", "EMBEDDED_PHOTOS", "EMBEDDED_HOLDOUT", "IMAGE_SUFFIXES",
    "embedded_array", "read_file", "pil_to_rgb", "to_tensor", "folder_files",
    "embedded_photos", "folder_photos", "resize_center_crop", "rescale", "psnr",
]

#: the scenarios' embedded corpus (``data.source: embedded``), in the order scenarios see it.
#: Changing it changes every scenario's image list (results rows, ``data.limit``).
EMBEDDED_IMAGES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina",
)
#: the JSCC / prior training corpus (``source: embedded`` in ``configs/jscc_*.yaml``,
#: ``configs/prior_*.yaml``). One photo more than :data:`EMBEDDED_IMAGES`: the shipped JSCC weights
#: were trained on exactly this list (their crops' random stream depends on it), while the
#: scenarios' results were produced with the seven above. Keep both lists as they are.
EMBEDDED_PHOTOS: tuple[str, ...] = EMBEDDED_IMAGES + ("stereo_motorcycle",)
#: photos the trainings keep out by default (evaluation on images the models never saw)
EMBEDDED_HOLDOUT: tuple[str, ...] = ("coffee", "chelsea")
#: file suffixes read from a folder (compared in lower case)
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")


# ---- reading -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def embedded_array(name: str) -> np.ndarray:
    """One scikit-image photo as a read-only array (cached: every caller gets the same object).

    :param name: a ``skimage.data`` function name (e.g. one of :data:`EMBEDDED_PHOTOS`)
    :return: ``[H, W, 3]`` uint8 (``stereo_motorcycle``: its left view)
    :raises ValueError: ``name`` is not an image of ``skimage.data``
    """
    import skimage.data

    load = getattr(skimage.data, name, None)
    if load is None or name.startswith("_"):
        raise ValueError(f"no embedded image {name!r}; known: {', '.join(EMBEDDED_PHOTOS)}")
    arr = load()
    if isinstance(arr, tuple):  # stereo_motorcycle -> (left, right, disparity)
        arr = arr[0]
    arr.setflags(write=False)  # cached: callers must not modify it
    return arr


def read_file(path: str | Path) -> np.ndarray:
    """Decode one image file with Pillow.

    :return: ``[H, W, 3]`` uint8 RGB (conversions: see the module notes)
    :raises OSError: the file cannot be opened or is truncated
    :raises ValueError: the file is not an image Pillow can identify
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return pil_to_rgb(im)
    except UnidentifiedImageError:
        raise ValueError("not a readable image file") from None


def pil_to_rgb(im) -> np.ndarray:
    """A Pillow image as ``[H, W, 3]`` uint8 RGB (16-bit scaled, alpha composited on white)."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grayscale: Pillow's convert("L") clips; scale to 8 bits instead
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / peak * 255 + 0.5, 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Pillow's convert("RGB") would drop alpha (transparent pixels keep arbitrary colours)
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("RGB"))


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


def folder_files(folder: str | Path) -> list[tuple[str, Path]]:
    """The image files under ``folder`` (recursive), sorted by relative path, with unique names.

    A name is the relative path without extension, ``/`` replaced by ``__``; when two files would
    share a name (``a.png``, ``a.jpg``) both keep their extension (``a_png``, ``a_jpg``).

    :return: ``[(name, path)]``
    :raises FileNotFoundError: the folder does not exist, or holds no :data:`IMAGE_SUFFIXES` file
        (``strerror`` is the reason, ``filename`` the folder)
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "folder does not exist", str(root))
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise FileNotFoundError(errno.ENOENT, f"no image files ({', '.join(IMAGE_SUFFIXES)}) found", str(root))
    stems = [p.relative_to(root).with_suffix("").as_posix().replace("/", "__") for p in files]
    dup = {s for s in stems if stems.count(s) > 1}
    names = [(s + "_" + p.suffix.lower().lstrip(".")) if s in dup else s for s, p in zip(stems, files)]
    return list(zip(names, files))


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
