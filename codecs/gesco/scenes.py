"""Procedural street scenes with exact per-pixel labels and an instance map.

No registry package ships a labelled segmentation set or a pretrained segmenter, so GESCO's
embedded data is generated: :func:`render_scene` draws one street scene seen from a car, far to
near, in a perspective with a random vanishing point — sky, buildings with window grids,
trees, the road with dashed lane marks, sidewalks, cars, people and poles — and returns the
image, the label map and the instance map.

**Exact labels.** Every shape is a test on the pixel *centre* (point sampling, no anti-aliasing),
and the colour of a pixel is chosen by the same test that sets its label, so the label map is
the exact semantic content of the image (textures only modulate the colour inside a class).

**Classes** (:data:`CLASSES`, index = label id): 0 sky, 1 building, 2 vegetation, 3 road,
4 sidewalk, 5 car, 6 person, 7 pole. **Instances**: ``0`` for stuff classes, and
``class * 1000 + k`` (Cityscapes' convention) for the ``k``-th car / person / pole.

**Determinism.** Scene ``i`` of seed ``S`` draws from ``numpy.random.default_rng([S, i])`` only,
so a scene does not depend on how many others are generated, nor on their order.

>>> img, lab, inst = render_scene(32, 64, seed=0, index=0)
>>> img.shape, lab.shape, inst.shape, img.dtype, lab.dtype
((32, 64, 3), (32, 64), (32, 64), dtype('float32'), dtype('uint8'))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..image_files import scene_names

__all__ = ["CLASSES", "NUM_CLASSES", "THING_CLASSES", "PALETTE", "render_scene", "SceneSet", "scene_set",
           "instance_edges", "colorize"]

CLASSES = ("sky", "building", "vegetation", "road", "sidewalk", "car", "person", "pole")
NUM_CLASSES = len(CLASSES)
SKY, BUILDING, VEGETATION, ROAD, SIDEWALK, CAR, PERSON, POLE = range(NUM_CLASSES)
#: classes with instances (the others are "stuff", instance id 0)
THING_CLASSES = (CAR, PERSON, POLE)
#: display colours of the label maps (Cityscapes-like), uint8 [K, 3]
PALETTE = np.array([[70, 130, 180], [70, 70, 70], [107, 142, 35], [128, 64, 128], [244, 35, 232],
                    [0, 0, 142], [220, 20, 60], [153, 153, 153]], dtype=np.uint8)


class _Canvas:
    """Image, labels and instances of one scene being painted (later paint covers earlier)."""

    def __init__(self, h: int, w: int, rng: np.random.Generator):
        self.h, self.w, self.rng = h, w, rng
        # pixel centres in normalised units: y in (0, 1) top to bottom, x in (0, w/h) left to right
        self.y = ((np.arange(h) + 0.5) / h)[:, None]
        self.x = ((np.arange(w) + 0.5) / h)[None, :]
        self.img = np.zeros((h, w, 3), np.float32)
        self.lab = np.zeros((h, w), np.uint8)
        self.inst = np.zeros((h, w), np.int32)
        self.count = {c: 0 for c in THING_CLASSES}

    def paint(self, mask: np.ndarray, label: int, colour: np.ndarray, instance: bool = False) -> None:
        """Set ``mask`` ([H, W] bool) to ``label`` with ``colour`` ([3] or [H, W, 3])."""
        if not mask.any():
            return
        self.lab[mask] = label
        self.img[mask] = colour[mask] if colour.ndim == 3 else colour
        if instance:
            self.count[label] += 1
            self.inst[mask] = label * 1000 + self.count[label]
        else:
            self.inst[mask] = 0

    def jitter(self, base, amount: float = 0.06) -> np.ndarray:
        return np.clip(np.asarray(base, np.float32) + self.rng.uniform(-amount, amount, 3), 0, 1).astype(np.float32)

    def noise(self, scale: float) -> np.ndarray:
        """Per-pixel luminance grain ``[H, W, 1]``."""
        return (self.rng.standard_normal((self.h, self.w, 1)) * scale).astype(np.float32)


def render_scene(height: int, width: int, seed: int = 0, index: int = 0):
    """One procedural street scene.

    :param height, width: output size [pixels] (any size; shapes are defined in normalised units)
    :param seed, index: the scene is a function of ``(seed, index)`` only
    :return: ``(image [H, W, 3] float32 in [0, 1], labels [H, W] uint8 in [0, K), instances
        [H, W] int32)``
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])
    cv = _Canvas(height, width, rng)
    y, x = cv.y, cv.x
    aspect = width / height
    horizon = rng.uniform(0.32, 0.5)
    vx = rng.uniform(0.35, 0.65) * aspect  # vanishing point
    depth = np.clip((y - horizon) / (1 - horizon), 0, None)  # 0 at the horizon, 1 at the bottom row
    road_half = rng.uniform(0.45, 0.7) * aspect  # half road width at the bottom row
    walk = rng.uniform(0.12, 0.3) * aspect  # sidewalk width at the bottom row
    left_edge, right_edge = vx - road_half * depth, vx + road_half * depth

    # sky: vertical gradient, brighter at the horizon
    top, low = cv.jitter([0.35, 0.55, 0.85], 0.1), cv.jitter([0.75, 0.82, 0.92], 0.06)
    t = np.clip(y / max(horizon, 1e-3), 0, 1)[..., None]
    sky = (top * (1 - t) + low * t) * np.ones((height, width, 1), np.float32)
    cv.paint(np.ones((height, width), bool), SKY, sky)

    # buildings and trees along the skyline, left to right (façades and canopies)
    ground = y >= horizon
    xs = 0.0
    while xs < aspect:
        bw = rng.uniform(0.15, 0.45)
        if rng.random() < 0.72:
            roof = rng.uniform(0.03, horizon - 0.05)
            mask = (x >= xs) & (x < xs + bw) & (y >= roof) & (y < horizon + 0.02)
            col = cv.jitter(rng.choice([[0.45, 0.42, 0.4], [0.6, 0.55, 0.48], [0.35, 0.35, 0.4], [0.55, 0.35, 0.3]]), 0.08)
            # window grid: darker cells on a lattice (texture only; the label stays building)
            pitch_x, pitch_y = rng.uniform(0.05, 0.09), rng.uniform(0.06, 0.1)
            wx = ((x - xs) / pitch_x) % 1.0
            wy = ((y - roof) / pitch_y) % 1.0
            win = (wx > 0.3) & (wx < 0.75) & (wy > 0.3) & (wy < 0.75)
            colour = col * np.ones((height, width, 1), np.float32) * np.where(win, 0.55, 1.0)[..., None]
            cv.paint(mask, BUILDING, np.clip(colour + cv.noise(0.02), 0, 1))
        else:
            cx, r = xs + bw / 2, rng.uniform(0.1, 0.2)
            cy = horizon - rng.uniform(0.02, 0.12)
            canopy = ((x - cx) ** 2 + ((y - cy) * 1.2) ** 2 < r * r) | (
                (np.abs(x - cx) < 0.02) & (y >= cy) & (y < horizon + 0.02))
            col = cv.jitter([0.25, 0.45, 0.15], 0.07)
            cv.paint(canopy, VEGETATION, np.clip(col + cv.noise(0.06), 0, 1))
        xs += bw

    # the ground beyond the sidewalks: building bases / hedges up to the horizon band
    verge = ground & ((x < left_edge - walk * depth) | (x > right_edge + walk * depth))
    cv.paint(verge, VEGETATION if rng.random() < 0.5 else BUILDING,
             np.clip(cv.jitter([0.3, 0.42, 0.2], 0.06) + cv.noise(0.05), 0, 1))
    # sidewalks with a paving texture
    side = ground & (x >= left_edge - walk * depth) & (x <= right_edge + walk * depth)
    pave = 1.0 - 0.12 * (((y * 40 / np.maximum(depth, 0.05)) % 1.0) < 0.15)
    cv.paint(side, SIDEWALK, np.clip(cv.jitter([0.7, 0.65, 0.62], 0.06) * pave[..., None] + cv.noise(0.02), 0, 1))
    # road with dashed lane marks (texture: still labelled road)
    road = ground & (x >= left_edge) & (x <= right_edge)
    asphalt = cv.jitter([0.32, 0.31, 0.33], 0.05) * np.ones((height, width, 1), np.float32)
    lane_u = rng.uniform(-0.05, 0.05)
    mark_w = 0.012 + 0.025 * depth
    dash = (np.log(np.maximum(depth, 1e-3)) * 3.0 + rng.uniform(0, 1)) % 1.0 < 0.5
    mark = (np.abs(x - (vx + lane_u * depth * aspect)) < mark_w) & dash & (depth > 0.04)
    asphalt = np.where(mark[..., None], np.float32(0.92), asphalt)
    cv.paint(road, ROAD, np.clip(asphalt + cv.noise(0.025), 0, 1))

    # things, far to near (sorted by the depth of their foot point) so nearer ones cover farther ones
    things = []
    for _ in range(rng.integers(0, 5)):  # cars on the road
        d = rng.uniform(0.08, 1.0)
        u = rng.uniform(-0.75, 0.75)
        things.append((d, CAR, u))
    for _ in range(rng.integers(0, 4)):  # people on the sidewalks
        d = rng.uniform(0.1, 1.0)
        things.append((d, PERSON, rng.choice([-1, 1]) * rng.uniform(1.02, 1.0 + 0.9 * walk / road_half)))
    for _ in range(rng.integers(0, 4)):  # poles at the kerb
        d = rng.uniform(0.05, 1.0)
        things.append((d, POLE, rng.choice([-1, 1]) * (1.0 + rng.uniform(0.05, 0.4) * walk / road_half)))
    for d, cls, u in sorted(things, key=lambda th: th[0]):
        foot_y = horizon + d * (1 - horizon)
        cx = vx + u * road_half * d
        scale = d * (1 - horizon)  # apparent size of one "metre" at that depth, normalised
        if cls == CAR:
            cw, ch = 1.1 * scale * rng.uniform(0.8, 1.1), 0.55 * scale * rng.uniform(0.85, 1.1)
            body = (np.abs(x - cx) < cw / 2) & (y < foot_y) & (y >= foot_y - ch * 0.6)
            cabin = (np.abs(x - cx) < cw * 0.35) & (y < foot_y - ch * 0.6) & (y >= foot_y - ch)
            mask = body | cabin
            col = cv.jitter(rng.choice([[0.7, 0.1, 0.1], [0.1, 0.2, 0.6], [0.85, 0.85, 0.85], [0.1, 0.1, 0.1],
                                        [0.8, 0.7, 0.1]]), 0.05)
            glass = cabin & (np.abs(x - cx) < cw * 0.3) & (y >= foot_y - ch * 0.93)
            wheel = body & (y >= foot_y - ch * 0.18) & (np.abs(np.abs(x - cx) - cw * 0.3) < cw * 0.1)
            colour = np.where(glass[..., None], np.float32([0.2, 0.25, 0.3]),
                              np.where(wheel[..., None], np.float32([0.05, 0.05, 0.05]), col))
            cv.paint(mask, CAR, colour.astype(np.float32), instance=True)
        elif cls == PERSON:
            ph, pw = 0.9 * scale * rng.uniform(0.85, 1.15), 0.18 * scale
            torso = (np.abs(x - cx) < pw / 2) & (y < foot_y) & (y >= foot_y - ph * 0.82)
            head = (x - cx) ** 2 + (y - (foot_y - ph * 0.9)) ** 2 < (0.09 * ph) ** 2
            shirt, trousers = cv.jitter(rng.uniform(0.1, 0.9, 3), 0.0), cv.jitter([0.15, 0.15, 0.25], 0.05)
            colour = np.where((y < foot_y - ph * 0.45)[..., None], shirt, trousers) * np.ones((height, width, 1), np.float32)
            colour = np.where(head[..., None], np.float32([0.85, 0.65, 0.5]), colour)
            cv.paint(torso | head, PERSON, colour.astype(np.float32), instance=True)
        else:
            pole_h, pole_w = 2.2 * scale, max(0.04 * scale, 0.55 / height)  # at least ~1 pixel wide
            mask = (np.abs(x - cx) < pole_w / 2) & (y < foot_y) & (y >= foot_y - pole_h)
            cv.paint(mask, POLE, cv.jitter([0.45, 0.45, 0.48], 0.05), instance=True)
    return np.clip(cv.img, 0, 1), cv.lab, cv.inst


def instance_edges(instances: torch.Tensor) -> torch.Tensor:
    """Instance-boundary map (SPADE/pix2pixHD's edge channel): 1 where a 4-neighbour has another id.

    :param instances: ``[..., H, W]`` integer instance ids
    :return: ``[..., H, W]`` float32 in {0, 1}
    """
    e = torch.zeros(instances.shape, dtype=torch.bool, device=instances.device)
    dv = instances[..., 1:, :] != instances[..., :-1, :]
    dh = instances[..., :, 1:] != instances[..., :, :-1]
    e[..., 1:, :] |= dv
    e[..., :-1, :] |= dv
    e[..., :, 1:] |= dh
    e[..., :, :-1] |= dh
    return e.float()


def colorize(labels: torch.Tensor) -> torch.Tensor:
    """Label maps ``[B, H, W]`` (ids, 255 = unlabelled shown black) -> ``[B, 3, H, W]`` float in [0, 1]."""
    pal = torch.cat([torch.from_numpy(PALETTE).float() / 255, torch.zeros(1, 3)])
    idx = labels.long().clamp(max=NUM_CLASSES)
    idx = torch.where(labels.long() >= NUM_CLASSES, NUM_CLASSES, idx)
    return pal[idx].permute(0, 3, 1, 2).contiguous()


@dataclass
class SceneSet:
    """Scenes as tensors: ``images [B, 3, H, W]`` float32 in [0, 1], ``labels [B, H, W]`` long,
    ``instances [B, H, W]`` long, ``names`` (``scene_<seed>_<index>``)."""

    images: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor
    names: list


def scene_set(height: int, width: int, count: int, seed: int = 0, start: int = 0) -> SceneSet:
    """Scenes ``start .. start+count-1`` of ``seed`` (see :func:`render_scene`)."""
    imgs, labs, insts = [], [], []
    for i in range(start, start + count):
        im, lab, inst = render_scene(height, width, seed, i)
        imgs.append(torch.from_numpy(im).permute(2, 0, 1))
        labs.append(torch.from_numpy(lab.astype(np.int64)))
        insts.append(torch.from_numpy(inst.astype(np.int64)))
    return SceneSet(torch.stack(imgs), torch.stack(labs), torch.stack(insts),
                    scene_names(seed, count, start))
