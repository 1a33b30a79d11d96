"""Labelled image sets: procedural scenes, Cityscapes and COCO-Stuff folders.

:func:`load_labelled` returns a :class:`~.scenes.SceneSet` (images ``[B, 3, H, W]`` float32 in
[0, 1], labels ``[B, H, W]`` long, instances ``[B, H, W]`` long, names), resized like the image
corpus (short side to fit, centre crop; labels and instances with *nearest* so ids stay exact).

* ``scenes``: :func:`~.scenes.scene_set` rendered directly at the output size.
* ``cityscapes``: ``<root>/leftImg8bit/**/<stem>_leftImg8bit.png`` paired with
  ``<root>/gtFine/**/<stem>_gtFine_labelIds.png`` (Cityscapes label ids mapped to the 19 train
  ids, 255 = ignored) and ``<stem>_gtFine_instanceIds.png``. Instance ids are 16-bit
  (``class * 1000 + k``) and are read as ``I;16``/``I`` integers — ``.convert("L")`` would clip
  them to 255 and merge every instance.
* ``coco_stuff``: ``<root>/images/**/<stem>.jpg|png`` paired with ``<root>/labels/**/<stem>.png``
  (indexed PNG of class ids, 255 = unlabelled); no instance map (edges come from the labels).

Pairing is by file stem; a stem present on one side only is an error naming the first few
(:class:`PairingError`, a ``ValueError``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..images import read_file, resize_center_crop, to_tensor
from .scenes import SceneSet, scene_set

__all__ = ["PairingError", "load_labelled", "CITYSCAPES_TRAIN_IDS", "read_ids", "pair_by_stem"]

#: Cityscapes labelId -> trainId (19 evaluated classes; the rest 255), from the dataset's labels.py
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


class PairingError(ValueError):
    """Images and label files that do not pair one-to-one by stem."""


def read_ids(path: str | Path) -> np.ndarray:
    """An id map (label or instance PNG) as ``[H, W]`` int64, 16-bit values kept exactly.

    Indexed (``P``) PNGs give their indices, ``L`` its bytes, ``I;16``/``I`` their integers.
    """
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("P", "L", "I", "I;16", "I;16L", "I;16B", "I;16N"):
            return np.asarray(im).astype(np.int64)
        raise ValueError(f"{path}: id maps must be single-channel (mode {im.mode})")


def pair_by_stem(images: dict[str, Path], labels: dict[str, Path], what: str) -> list[str]:
    """The common stems, sorted; :class:`PairingError` when either side has stems the other lacks."""
    only_img, only_lab = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    if only_img or only_lab:
        parts = []
        if only_img:
            parts.append(f"{len(only_img)} image(s) without labels (e.g. {only_img[0]})")
        if only_lab:
            parts.append(f"{len(only_lab)} label file(s) without an image (e.g. {only_lab[0]})")
        raise PairingError(f"{what}: " + "; ".join(parts))
    if not images:
        raise PairingError(f"{what}: no image/label pairs found")
    return sorted(images)


def _stems(folder: Path, suffix: str, exts=(".png",)) -> dict[str, Path]:
    out = {}
    for p in sorted(folder.rglob("*")):
        stem = p.name[: -len(p.suffix)] if p.suffix else p.name
        if p.suffix.lower() in exts and stem.endswith(suffix):
            out[stem[: len(stem) - len(suffix)]] = p
    return out


def _resize_ids(ids: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Nearest resize + centre crop of an id map, the geometry of :func:`resize_center_crop`."""
    h, w = ids.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    t = torch.from_numpy(ids)
    if (new_h, new_w) != (h, w):
        # float64 holds every 16-bit id exactly; nearest never mixes ids
        t = F.interpolate(t[None, None].double(), size=(new_h, new_w), mode="nearest")[0, 0].round().long()
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return t[top:top + height, left:left + width].contiguous()


def load_labelled(source: str, size: tuple[int, int], limit: int | None = None, seed: int = 0,
                  folder: str | Path | None = None) -> SceneSet:
    """A labelled set (module notes).

    :param source: ``scenes`` | ``cityscapes`` | ``coco_stuff``
    :param size: ``(H, W)``; :param limit: first ``limit`` items (scenes: how many; default 8)
    :param seed: scenes only; :param folder: dataset root (cityscapes, coco_stuff)
    :raises PairingError: unpaired files; :raises FileNotFoundError: missing folders
    """
    h, w = size
    if source == "scenes":
        return scene_set(h, w, limit or 8, seed)
    root = Path(folder or "").expanduser()
    if source == "cityscapes":
        img_dir, gt_dir = root / "leftImg8bit", root / "gtFine"
        for d in (img_dir, gt_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"{d}: Cityscapes folder not found (expected leftImg8bit/ and gtFine/)")
        imgs = _stems(img_dir, "_leftImg8bit")
        labs = _stems(gt_dir, "_gtFine_labelIds")
        insts = _stems(gt_dir, "_gtFine_instanceIds")
        stems = pair_by_stem(imgs, labs, str(root))
        missing = [s for s in stems if s not in insts]
        if missing:
            raise PairingError(f"{root}: {len(missing)} image(s) without an instanceIds file (e.g. {missing[0]})")
        lut = np.full(256, 255, np.int64)
        for k, v in CITYSCAPES_TRAIN_IDS.items():
            lut[k] = v
    elif source == "coco_stuff":
        img_dir, gt_dir = root / "images", root / "labels"
        for d in (img_dir, gt_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"{d}: COCO-Stuff folder not found (expected images/ and labels/)")
        imgs = _stems(img_dir, "", (".jpg", ".jpeg", ".png"))
        labs = _stems(gt_dir, "")
        stems = pair_by_stem(imgs, labs, str(root))
        insts, lut = None, None
    else:
        raise ValueError(f"unknown labelled source {source!r}")
    stems = stems[:limit] if limit else stems
    images, labels, instances = [], [], []
    for s in stems:
        images.append(resize_center_crop(to_tensor(read_file(imgs[s])), h, w))
        lab = read_ids(labs[s])
        if lut is not None:
            lab = lut[np.clip(lab, 0, 255)]
        labels.append(_resize_ids(lab, h, w))
        instances.append(_resize_ids(read_ids(insts[s]), h, w) if insts is not None else labels[-1].clone())
    return SceneSet(torch.stack(images), torch.stack(labels), torch.stack(instances), list(stems))
