"""Images for the simulator: the embedded corpus and user folders.

``load_images`` returns an :class:`ImageSet`: a float32 tensor ``[B, 3, H, W]`` (RGB, [0, 1]) and
one name per image, in a deterministic order.

**Embedded corpus** (``source="embedded"``): the colour photographs that ship inside
scikit-image's ``skimage.data`` (no download), all free of copyright restrictions according to
skimage's docstrings: ``astronaut`` (NASA, public domain), ``coffee`` (CC0, Rachel Michetti),
``chelsea`` (CC0, Stefan van der Walt), ``rocket`` (SpaceX, public domain),
``hubble_deep_field`` (NASA, public domain), ``immunohistochemistry`` (no known restrictions),
``retina`` (CC0).

**Folder** (``source="folder"``): ``*.png, *.jpg, *.jpeg, *.bmp`` (any case), searched
recursively, sorted by relative path. Names are the relative paths without extension, with ``/``
replaced by ``__`` (the extension is kept when two files would share a name).

**Preprocessing**: the short side is resized to fit ``size`` (antialiased bicubic, torch), then
the centre is cropped. ``size`` is an int (square) or ``[H, W]``.
Grayscale images are replicated to RGB; an alpha channel (RGBA, LA, palette transparency) is
composited on white; 16-bit images are scaled to 8 bits. Odd sizes are fine (codecs that need
even or block-multiple sizes pad and crop back). Source images whose short side is below
:data:`MIN_SOURCE_SIDE` pixels (e.g. 1x1) carry no usable content and are errors.

**Errors**: every file is opened and decoded before anything is returned, so a corrupt file stops
the run before any work with :class:`~linksim.errors.DataError` naming the file;
``on_error="skip"`` instead skips it with a warning.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError

#: skimage.data functions of the embedded corpus, in the order they are returned
EMBEDDED_IMAGES: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina",
)
#: file suffixes read from a folder (compared in lower case)
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
#: smallest short side [pixels] of a usable source image
MIN_SOURCE_SIDE = 8


@dataclass
class ImageSet:
    """A batch of images and their names.

    :param images: ``[B, 3, H, W]`` float32, RGB in [0, 1]
    :param names: ``B`` unique names (used in results rows and file names)
    """

    images: torch.Tensor
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(zip(self.names, self.images))


def load_images(source: Any = "embedded", folder: str | Path | None = None,
                size: int | Sequence[int] = 64, limit: int | None = None,
                on_error: str = "raise", names: Sequence[str] | None = None) -> ImageSet:
    """Load, resize and centre-crop images.

    :param source: ``"embedded"`` or ``"folder"``; or a config object with attributes
        ``source``, ``folder``, ``size``, ``limit`` (e.g. the scenario's ``data`` section), whose
        values are then used
    :param folder: directory searched recursively (``source="folder"``)
    :param size: output side [pixels] (int) or ``[H, W]``
    :param limit: keep the first ``limit`` images (``None``: all)
    :param on_error: ``"raise"`` (default) or ``"skip"`` for unreadable/unusable files
    :param names: keep only these images, in this order (embedded names, or file stems for a
        folder; ``limit`` applies afterwards) — e.g. the photos the embedded models never saw
    :output images: :class:`ImageSet` with ``images`` ``[B, 3, H, W]`` float32 in [0, 1]

    >>> load_images("embedded", size=32, limit=2).images.shape
    torch.Size([2, 3, 32, 32])
    """
    if not isinstance(source, str):
        cfg = source
        source = getattr(cfg, "source", "embedded")
        folder = getattr(cfg, "folder", folder)
        size = getattr(cfg, "size", size)
        limit = getattr(cfg, "limit", limit)
        on_error = getattr(cfg, "on_error", on_error)
        names = getattr(cfg, "names", names)
    out_h, out_w = _parse_size(size)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError("data.limit", f"must be a positive integer or null, got {limit!r}")
    if on_error not in ("raise", "skip"):
        raise DataError("data.on_error", f"must be 'raise' or 'skip', got {on_error!r}")

    if source == "embedded":
        items = [(n, f"embedded:{n}", functools.partial(_embedded_array, n)) for n in EMBEDDED_IMAGES]
    elif source == "folder":
        items = [(n, p, functools.partial(_read_file, p)) for n, p in _folder_files(folder)]
    else:
        raise DataError("data.source", f"must be 'embedded' or 'folder', got {source!r}")
    if names is not None:
        items = _select(items, list(names), source)

    images, kept = [], []
    for name, path, read in items:
        if limit is not None and len(kept) >= limit:
            break
        try:
            arr = read()
            if min(arr.shape[:2]) < MIN_SOURCE_SIDE:
                raise ValueError(f"image is {arr.shape[1]}x{arr.shape[0]} pixels; "
                                 f"at least {MIN_SOURCE_SIDE} pixels per side are needed")
        except (OSError, ValueError, SyntaxError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if on_error == "skip":
                warnings.warn(f"skipping {path}: {msg}", stacklevel=2)
                continue
            raise DataError(path, msg) from None
        images.append(resize_center_crop(_to_tensor(arr), out_h, out_w))
        kept.append(name)
    if not images:
        raise DataError(folder if source == "folder" else "embedded", "no usable images")
    return ImageSet(torch.stack(images), kept)


def _select(items: list, names: list[str], source: str) -> list:
    """``items`` (``(name, path, reader)``) restricted to ``names``, in that order."""
    by_name = {item[0]: item for item in items}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        have = ", ".join(sorted(by_name)) if source == "embedded" else f"{len(by_name)} files"
        raise DataError("data.names", f"unknown image name(s) {unknown}; available: {have}")
    if len(set(names)) != len(names):
        raise DataError("data.names", f"names repeat: {names}")
    return [by_name[n] for n in names]


def resize_center_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize so the image covers ``height`` x ``width``, then crop the centre.

    :param image: ``[3, h, w]`` float32 in [0, 1]
    :output image: ``[3, height, width]`` float32 in [0, 1]
    """
    _, h, w = image.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bicubic",
                              antialias=True, align_corners=False)[0].clamp_(0, 1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return image[:, top:top + height, left:left + width].contiguous()


# ----------------------------------------------------------------------------- helpers
def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, bool):
        raise DataError("data.size", f"must be an int or [H, W], got {size!r}")
    if isinstance(size, int):
        hw = (size, size)
    elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise DataError("data.size", f"must be an int or [H, W], got {size!r}")
    if min(hw) < 1:
        raise DataError("data.size", f"must be positive, got {size!r}")
    return hw


@functools.lru_cache(maxsize=None)
def _embedded_array(name: str) -> np.ndarray:
    import skimage.data

    arr = getattr(skimage.data, name)()
    arr.setflags(write=False)  # cached: callers must not modify it
    return arr


def _folder_files(folder: str | Path | None) -> list[tuple[str, Path]]:
    if folder is None:
        raise DataError("data.folder", "is required with source: folder")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(root, "folder does not exist")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(root, f"no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    stems = [p.relative_to(root).with_suffix("").as_posix().replace("/", "__") for p in files]
    dup = {s for s in stems if stems.count(s) > 1}
    names = [
        (s + "_" + p.suffix.lower().lstrip(".")) if s in dup else s for s, p in zip(stems, files)
    ]
    return list(zip(names, files))


def _read_file(path: Path) -> np.ndarray:
    """Decode one file to ``[H, W, 3]`` uint8 RGB (see module notes for the conversions)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise ValueError("not a readable image file") from None


def _pil_to_rgb(im) -> np.ndarray:
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grayscale: Pillow's convert("L") clips; scale to 8 bits instead
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / peak * 255 + 0.5, 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("RGB"))


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``[H, W]``/``[H, W, C]`` uint8 -> ``[3, H, W]`` float32 in [0, 1] (gray -> RGB, alpha on white)."""
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
