"""Images for the simulator: the embedded corpus and user folders.

``load_images`` returns an :class:`ImageSet`: a float32 tensor ``[B, 3, H, W]`` (RGB, [0, 1]) and
one name per image, in a deterministic order.

**Embedded corpus** (``source="embedded"``): the seven colour photographs of
:data:`EMBEDDED_IMAGES`, shipped inside scikit-image's ``skimage.data`` (no download) and free of
copyright restrictions (sources and licences: :mod:`linksim.codecs.images`).

**Folder** (``source="folder"``): ``*.png, *.jpg, *.jpeg, *.bmp`` (any case), searched
recursively, sorted by relative path. Names are the relative paths without extension, with ``/``
replaced by ``__`` (the extension is kept when two files would share a name).

**Preprocessing**: the short side is resized to fit ``size`` (antialiased bicubic, torch), then
the centre is cropped. ``size`` is an int (square) or ``[H, W]``.
Reading, conversions and resizing are :mod:`linksim.codecs.images` (shared with the trainings,
which may not import the engine); this module adds the engine's policy: checks, names, errors.
Grayscale images are replicated to RGB; an alpha channel (RGBA, LA, palette transparency) is
composited on white; 16-bit images are scaled to 8 bits. Odd sizes are fine (codecs that need
even or block-multiple sizes pad and crop back). Source images whose short side is below
:data:`MIN_SOURCE_SIDE` pixels (e.g. 1x1) carry no usable content and are errors.

**Labelled sources** (``scenes``, ``cityscapes``, ``coco_stuff``; GESCO and the ``miou``
metric): :mod:`linksim.codecs.gesco.labelled` — procedural street scenes (``seed`` and
``limit`` choose them; default 8), or a Cityscapes / COCO-Stuff folder paired by file stem.
:attr:`ImageSet.labels` / :attr:`ImageSet.instances` carry the maps (``[B, H, W]``).

**Camera** (``source="camera"``): a deterministic video of ``limit`` frames (default 8): a view
of ``size`` pans left to right across the embedded photo ``photo`` by ``pan_px`` pixels per frame.
The photo is resized (bicubic, as above) so that it covers a strip of ``H x (W + (limit − 1) ·
pan_px)`` and centre-cropped to it; frame ``k`` is the window starting at column ``k · pan_px``.
Names ``<photo>_f000, <photo>_f001, ...``. Successive frames share all but ``pan_px`` columns, as a
camera's do, so a stale frame shown in place of the current one is a small, realistic error (the
``<metric>_in_time`` columns of :mod:`linksim.frames`).

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

import torch

from .codecs.images import (EMBEDDED_IMAGES, IMAGE_SUFFIXES, embedded_array, folder_files, read_file,
                            resize_center_crop, to_tensor)
from .errors import DataError

__all__ = [
    "ImageSet", "load_images", "resize_center_crop", "EMBEDDED_IMAGES", "IMAGE_SUFFIXES", "MIN_SOURCE_SIDE",
    "LABELLED_SOURCES",
]

#: sources with per-pixel labels (+ instances): procedural scenes and the two dataset layouts
LABELLED_SOURCES = ("scenes", "cityscapes", "coco_stuff")
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
    #: labelled sources only (``scenes``, ``cityscapes``, ``coco_stuff``): ``[B, H, W]`` long class
    #: ids (255 = unlabelled) and instance ids
    labels: torch.Tensor | None = None
    instances: torch.Tensor | None = None

    def side(self) -> dict:
        """Per-image side data for methods and metrics that use it (``{}`` without labels)."""
        if self.labels is None:
            return {}
        return {"labels": self.labels, "instances": self.instances}

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
        seed = getattr(cfg, "seed", 0)
        camera = (getattr(cfg, "photo", "chelsea"), getattr(cfg, "pan_px", 2))
    else:
        seed, camera = 0, ("chelsea", 2)
    out_h, out_w = _parse_size(size)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError("data.limit", f"must be a positive integer or null, got {limit!r}")
    if on_error not in ("raise", "skip"):
        raise DataError("data.on_error", f"must be 'raise' or 'skip', got {on_error!r}")

    if source in LABELLED_SOURCES:
        return _load_labelled(source, (out_h, out_w), limit, seed, folder, names)
    if source == "camera":
        return _load_camera(*camera, (out_h, out_w), limit, names)
    if source == "embedded":
        items = [(n, f"embedded:{n}", functools.partial(embedded_array, n)) for n in EMBEDDED_IMAGES]
    elif source == "folder":
        items = [(n, p, functools.partial(read_file, p)) for n, p in _folder_files(folder)]
    else:
        raise DataError("data.source", f"must be 'embedded', 'folder', 'camera' or one of {LABELLED_SOURCES}, "
                        f"got {source!r}")
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
        images.append(resize_center_crop(to_tensor(arr), out_h, out_w))
        kept.append(name)
    if not images:
        raise DataError(folder if source == "folder" else "embedded", "no usable images")
    return ImageSet(torch.stack(images), kept)


def _load_labelled(source, size, limit, seed, folder, names) -> ImageSet:
    """Labelled sources (:mod:`linksim.codecs.gesco.labelled`) with their errors as :class:`DataError`."""
    from .codecs.gesco.labelled import load_labelled

    if source != "scenes" and folder is None:
        raise DataError("data.folder", f"is required with source: {source}")
    try:
        s = load_labelled(source, size, limit if names is None else None, seed, folder)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise DataError(str(folder) if folder is not None else "data", str(err).splitlines()[0]) from None
    keep = list(range(len(s.names)))
    if names is not None:
        keep = [item[1] for item in _select([(n, i) for i, n in enumerate(s.names)], list(names), source)]
        keep = keep[:limit] if limit else keep
    return ImageSet(s.images[keep], [s.names[i] for i in keep], s.labels[keep], s.instances[keep])


def _load_camera(photo: str, pan_px: int, size: tuple[int, int], limit: int | None,
                 names: Sequence[str] | None = None) -> ImageSet:
    """The camera source (module docstring): ``limit`` frames panning across ``photo``."""
    frames = limit or 8
    h, w = size
    try:
        strip = resize_center_crop(to_tensor(embedded_array(photo)), h, w + (frames - 1) * pan_px)
    except (KeyError, ValueError) as err:
        raise DataError("data.photo", str(err)) from None
    items = [(f"{photo}_f{k:03d}", k) for k in range(frames)]
    if names is not None:
        items = _select([(n, k, None) for n, k in items], list(names), "camera")
    images = torch.stack([strip[:, :, k * pan_px:k * pan_px + w] for _, k, *_ in items]).contiguous()
    return ImageSet(images, [item[0] for item in items])


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


def _folder_files(folder: str | Path | None) -> list[tuple[str, Path]]:
    """:func:`linksim.codecs.images.folder_files` with its errors as :class:`DataError`."""
    if folder is None:
        raise DataError("data.folder", "is required with source: folder")
    try:
        return folder_files(folder)
    except FileNotFoundError as err:
        raise DataError(err.filename, err.strerror) from None
