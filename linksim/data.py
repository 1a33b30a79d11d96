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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .codecs.images import EMBEDDED_IMAGES, IMAGE_SUFFIXES, embedded_array, resize_center_crop, to_tensor  # noqa: F401
from .errors import DataError
# listing, selection and the per-file check are torch-free (the validator's, linksim.sources)
from .sources import (LABELLED_SOURCES, MIN_SOURCE_SIDE, DataRequest, file_items,  # noqa: F401
                      camera_frames, labelled_selection, read_checked, select)

__all__ = [
    "ImageSet", "load_images", "resize_center_crop", "EMBEDDED_IMAGES", "IMAGE_SUFFIXES", "MIN_SOURCE_SIDE",
    "LABELLED_SOURCES",
]



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
    req = DataRequest.of(source, folder, size, limit, on_error, names)
    out_h, out_w = req.size
    if req.source in LABELLED_SOURCES:
        return _load_labelled(req.source, req.size, req.limit, req.seed, req.folder, req.names)
    if req.source == "camera":
        return _load_camera(req.photo, req.pan_px, req.size, req.limit, req.names)
    items = file_items(req)
    limit, folder = req.limit, req.folder

    images, kept = [], []
    for name, path, read in items:
        if limit is not None and len(kept) >= limit:
            break
        arr = read_checked(path, read, req.on_error)
        if arr is None:
            continue
        images.append(resize_center_crop(to_tensor(arr), out_h, out_w))
        kept.append(name)
    if not images:
        raise DataError(folder if req.source == "folder" else "embedded", "no usable images")
    return ImageSet(torch.stack(images), kept)


def _load_labelled(source, size, limit, seed, folder, names) -> ImageSet:
    """Labelled sources (:func:`linksim.sources.labelled_selection`) as an :class:`ImageSet`."""
    s, keep = labelled_selection(source, size, limit, seed, folder, names)
    return ImageSet(s.images[keep], [s.names[i] for i in keep], s.labels[keep], s.instances[keep])


def _load_camera(photo: str, pan_px: int, size: tuple[int, int], limit: int | None,
                 names: Sequence[str] | None = None) -> ImageSet:
    """The camera source (module docstring): ``limit`` frames panning across ``photo``."""
    names_all = camera_frames(photo, limit)
    frames = len(names_all)
    h, w = size
    try:
        strip = resize_center_crop(to_tensor(embedded_array(photo)), h, w + (frames - 1) * pan_px)
    except (KeyError, ValueError) as err:
        raise DataError("data.photo", str(err)) from None
    items = [(n, k) for k, n in enumerate(names_all)]
    if names is not None:
        items = select([(n, k, None) for n, k in items], list(names), "camera")
    images = torch.stack([strip[:, :, k * pan_px:k * pan_px + w] for _, k, *_ in items]).contiguous()
    return ImageSet(images, [item[0] for item in items])
