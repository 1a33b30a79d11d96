"""Reading image files and the embedded corpus lists, without torch (see :mod:`linksim.codecs.images`
for the conventions and the tensors; the scenario validator decodes every file through this module
before any work and must not import torch).
"""

from __future__ import annotations

import errno
import functools
from pathlib import Path

import numpy as np

__all__ = ["EMBEDDED_IMAGES", "EMBEDDED_PHOTOS", "EMBEDDED_HOLDOUT", "IMAGE_SUFFIXES", "embedded_array",
           "read_file", "pil_to_rgb", "folder_files", "scene_names"]

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


def scene_names(seed: int, count: int, start: int = 0) -> list[str]:
    """The names of the procedural scenes ``start .. start + count - 1`` of ``seed``
    (``data.source: scenes``; :func:`linksim.codecs.gesco.scenes.scene_set` draws them)."""
    return [f"scene_{seed}_{i}" for i in range(start, start + count)]


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
