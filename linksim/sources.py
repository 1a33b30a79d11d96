"""What a scenario's ``data:`` section will load — listed, selected and decoded without torch.

:func:`check_images` is the validator's data check (``linksim validate`` imports no torch): it lists
the images of the section, applies ``names`` and ``limit``, and decodes every file with Pillow, so
that an empty folder, a corrupt or too small file or an unknown name fails before any work, with
the :class:`~linksim.errors.DataError` the run would raise. :func:`linksim.data.load_images` uses the
same listing and the same per-file check, then makes tensors. Labelled dataset folders
(``cityscapes``, ``coco_stuff``) are checked by their loader (which imports torch).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .codecs.image_files import EMBEDDED_IMAGES, EMBEDDED_PHOTOS, embedded_array, folder_files, read_file, scene_names
from .errors import DataError

__all__ = ["DataRequest", "LABELLED_SOURCES", "MIN_SOURCE_SIDE", "check_images", "file_items", "parse_size",
           "read_checked", "select", "labelled_selection", "camera_frames"]

#: sources with per-pixel labels (+ instances): procedural scenes and the two dataset layouts
LABELLED_SOURCES = ("scenes", "cityscapes", "coco_stuff")
#: smallest short side [pixels] of a usable source image
MIN_SOURCE_SIDE = 8
#: scenes (and camera frames) when ``limit`` is not given
DEFAULT_GENERATED = 8


def camera_frames(photo: str, limit: int | None) -> list[str]:
    """Names of the camera source's frames, ``<photo>_f000, <photo>_f001, ...`` (``limit``, default 8)."""
    return [f"{photo}_f{k:03d}" for k in range(limit or DEFAULT_GENERATED)]


@dataclass(frozen=True)
class DataRequest:
    """The keys of a ``data:`` section (or :func:`linksim.data.load_images`'s arguments), checked."""

    source: str
    folder: Any
    size: tuple[int, int]
    limit: int | None
    on_error: str
    names: tuple[str, ...] | None
    seed: int = 0
    photo: str = "chelsea"
    pan_px: int = 2

    @classmethod
    def of(cls, source: Any = "embedded", folder=None, size=64, limit=None, on_error="raise", names=None
           ) -> "DataRequest":
        """From a config object with those attributes (the scenario's ``data``), or from the arguments."""
        seed, photo, pan_px = 0, "chelsea", 2
        if not isinstance(source, str):
            cfg = source
            source = getattr(cfg, "source", "embedded")
            folder = getattr(cfg, "folder", folder)
            size = getattr(cfg, "size", size)
            limit = getattr(cfg, "limit", limit)
            on_error = getattr(cfg, "on_error", on_error)
            names = getattr(cfg, "names", names)
            seed, photo, pan_px = getattr(cfg, "seed", 0), getattr(cfg, "photo", "chelsea"), getattr(cfg, "pan_px", 2)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise DataError("data.limit", f"must be a positive integer or null, got {limit!r}")
        if on_error not in ("raise", "skip"):
            raise DataError("data.on_error", f"must be 'raise' or 'skip', got {on_error!r}")
        if source not in ("embedded", "folder", "camera", *LABELLED_SOURCES):
            raise DataError("data.source", f"must be 'embedded', 'folder', 'camera' or one of {LABELLED_SOURCES}, "
                            f"got {source!r}")
        return cls(source, folder, parse_size(size), limit, on_error, tuple(names) if names is not None else None,
                   seed, photo, pan_px)


def parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` (an int: square, or ``[H, W]``) as ``(H, W)``; :class:`DataError` otherwise."""
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


def select(items: list, names: list[str], source: str) -> list:
    """``items`` (tuples whose first entry is the name) restricted to ``names``, in that order."""
    by_name = {item[0]: item for item in items}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        have = ", ".join(sorted(by_name)) if source == "embedded" else f"{len(by_name)} files"
        raise DataError("data.names", f"unknown image name(s) {unknown}; available: {have}")
    if len(set(names)) != len(names):
        raise DataError("data.names", f"names repeat: {names}")
    return [by_name[n] for n in names]


def _folder_files(folder) -> list[tuple[str, Path]]:
    """:func:`linksim.codecs.image_files.folder_files` with its errors as :class:`DataError`."""
    if folder is None:
        raise DataError("data.folder", "is required with source: folder")
    try:
        return folder_files(folder)
    except FileNotFoundError as err:
        raise DataError(err.filename, err.strerror) from None


def file_items(req: DataRequest) -> list[tuple[str, Any, Callable]]:
    """``[(name, path, read)]`` of an ``embedded`` or ``folder`` request, after ``names``."""
    if req.source == "embedded":
        items = [(n, f"embedded:{n}", functools.partial(embedded_array, n)) for n in EMBEDDED_IMAGES]
    else:
        items = [(n, p, functools.partial(read_file, p)) for n, p in _folder_files(req.folder)]
    return select(items, list(req.names), req.source) if req.names is not None else items


def read_checked(path, read: Callable, on_error: str, stacklevel: int = 3):
    """The decoded ``[H, W, 3]`` array of one file, or ``None`` when it is unusable and ``on_error``
    is ``skip`` (a warning); :class:`DataError` naming the file when it is ``raise``."""
    try:
        arr = read()
        if min(arr.shape[:2]) < MIN_SOURCE_SIDE:
            raise ValueError(f"image is {arr.shape[1]}x{arr.shape[0]} pixels; "
                             f"at least {MIN_SOURCE_SIDE} pixels per side are needed")
        return arr
    except (OSError, ValueError, SyntaxError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if on_error == "skip":
            warnings.warn(f"skipping {path}: {msg}", stacklevel=stacklevel)
            return None
        raise DataError(path, msg) from None


def labelled_selection(source, size, limit, seed, folder, names):
    """A labelled set (:func:`linksim.codecs.gesco.labelled.load_labelled`, which imports torch) and the
    indices ``names`` / ``limit`` keep, with its errors as :class:`DataError`."""
    from .codecs.gesco.labelled import load_labelled

    if source != "scenes" and folder is None:
        raise DataError("data.folder", f"is required with source: {source}")
    try:
        s = load_labelled(source, size, limit if names is None else None, seed, folder)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise DataError(str(folder) if folder is not None else "data", str(err).splitlines()[0]) from None
    keep = list(range(len(s.names)))
    if names is not None:
        keep = [item[1] for item in select([(n, i) for i, n in enumerate(s.names)], list(names), source)]
        keep = keep[:limit] if limit else keep
    return s, keep


def check_images(data: Any) -> int:
    """The number of images ``data`` yields, after decoding every file it names (no torch; see the
    module notes). Raises the :class:`DataError` :func:`linksim.data.load_images` would."""
    req = DataRequest.of(data)
    if req.source in ("cityscapes", "coco_stuff"):  # a dataset folder: its loader pairs and decodes it (torch)
        return len(labelled_selection(req.source, req.size, req.limit, req.seed, req.folder, req.names)[1])
    if req.source in ("scenes", "camera"):
        if req.source == "camera":
            if req.photo not in EMBEDDED_PHOTOS:
                raise DataError("data.photo", f"no embedded image {req.photo!r}; known: {', '.join(EMBEDDED_PHOTOS)}")
            names = camera_frames(req.photo, req.limit)
        else:  # scene_set's names (linksim.codecs.gesco.scenes); with names: the first 8 scenes are the pool
            count = DEFAULT_GENERATED if req.names is not None else (req.limit or DEFAULT_GENERATED)
            names = scene_names(req.seed, count)
        if req.names is None:
            return len(names)
        kept = len(select([(n,) for n in names], list(req.names), req.source))
        return min(kept, req.limit) if req.limit and req.source == "scenes" else kept
    kept = 0
    for name, path, read in file_items(req):
        if req.limit is not None and kept >= req.limit:
            break
        if read_checked(path, read, req.on_error) is not None:
            kept += 1
    if not kept:
        raise DataError(req.folder if req.source == "folder" else "embedded", "no usable images")
    return kept
