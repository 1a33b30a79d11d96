"""Settings of ``kind: lrisc``, its weight paths, the model geometry (groups, length table) and the
static plan of a frame (side information and data budget at an operating point).

Torch-free: the scenario validator reads :class:`LRISCSettings` and runs its ``check_point`` (the
geometry comes from the model's ``.json``) without importing torch (``linksim validate``); the
method is :mod:`linksim.codecs.lrisc.method`, the model :mod:`linksim.codecs.lrisc.model`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LRISCSettings", "LengthTable", "LRISCGeometry", "lrisc_plan", "ldpc_side_code", "side_bits", "side_symbols",
           "group_multiple", "num_groups", "DOWNSAMPLING", "EMBEDDED_DIR", "EMBEDDED_WEIGHTS", "EMBEDDED_DECODER",
           "weights_path", "decoder_dir"]

#: the analysis transform's spatial down-sampling (``y`` at H/8 x W/8)
DOWNSAMPLING = 8
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_WEIGHTS = EMBEDDED_DIR / "lrisc.safetensors"
EMBEDDED_DECODER = EMBEDDED_DIR / "ddpm"


def weights_path(spec: str) -> Path:
    return EMBEDDED_WEIGHTS if spec == "embedded" else Path(spec).expanduser()


def decoder_dir(spec: str) -> Path:
    return EMBEDDED_DECODER if spec == "embedded" else Path(spec).expanduser()


class LengthTable:
    """The allowed group lengths (complex symbols), strictly increasing, starting at ``>= 0``.

    :param lengths: e.g. ``(0, 4, 8, 12, 16, 24, 32, 48)``

    >>> LengthTable((0, 4, 8)).bits_per_group
    2
    """

    def __init__(self, lengths):
        vals = [int(v) for v in lengths]
        if len(vals) < 2 or vals[0] < 0 or any(b <= a for a, b in zip(vals, vals[1:])):
            raise ValueError(f"length table must be >= 2 strictly increasing non-negative integers; got {list(lengths)}")
        self.lengths = tuple(vals)

    @property
    def max(self) -> int:
        return self.lengths[-1]

    @property
    def bits_per_group(self) -> int:
        """``⌈log2 L⌉`` bits to send one group's length index."""
        return max(1, math.ceil(math.log2(len(self.lengths))))

    def __len__(self) -> int:
        return len(self.lengths)


def side_bits(num_groups: int, table: LengthTable) -> int:
    """Side-information bits per image: ``G · ⌈log2 L⌉``."""
    return num_groups * table.bits_per_group


def side_symbols(num_groups: int, table: LengthTable, bits_per_symbol: float) -> int:
    """Channel uses of the side information: ``⌈G·⌈log2 L⌉ / bits_per_symbol⌉``.

    :param bits_per_symbol: information bits per channel use of the digital side channel (1.0 =
        QPSK with a rate-1/2 code)
    """
    return math.ceil(side_bits(num_groups, table) / bits_per_symbol)


def group_multiple(group: int) -> int:
    """Image sides must be multiples of this (``z`` at /16 and whole groups of ``8p`` pixels)."""
    return max(2 * DOWNSAMPLING, DOWNSAMPLING * group)


def num_groups(group: int, height: int, width: int) -> int:
    """``G = (H/8p)·(W/8p)``; ``ValueError`` unless the sides are multiples of :func:`group_multiple`."""
    multiple = group_multiple(group)
    if height % multiple or width % multiple or height <= 0 or width <= 0:
        raise ValueError(f"LRISC needs image sides that are positive multiples of {multiple}; got {height}x{width}")
    s = DOWNSAMPLING * group
    return (height // s) * (width // s)


@dataclass(frozen=True)
class LRISCGeometry:
    """What the plan needs of a model: its group size ``p`` and length table (read from its ``.json``)."""

    group: int
    table: LengthTable

    @classmethod
    def from_file(cls, weights: str | Path) -> "LRISCGeometry":
        cfg = json.loads(Path(weights).with_suffix(".json").read_text())["config"]
        return cls(int(cfg["group"]), LengthTable(cfg["lengths"]))

    def num_groups(self, height: int, width: int) -> int:
        return num_groups(self.group, height, width)


#: CRC of the side-information codeword (``side_channel: ldpc``)
SIDE_CRC, SIDE_CRC_BITS = "CRC16", 16


def ldpc_side_code(num_bits: int, bits_per_symbol: float) -> tuple[int, int, int]:
    """``(k, n, symbols)`` of the side-information codeword: ``k = bits + 16`` (CRC16), 5G LDPC of rate
    ``bits_per_symbol / 2`` (``n`` even), QPSK: ``n / 2`` channel uses. ``ValueError`` outside the
    rates 5G LDPC realises (1/5 .. 0.95).

    >>> ldpc_side_code(48, 1.0)
    (64, 128, 64)
    """
    rate = bits_per_symbol / 2
    if not 0.2 <= rate <= 0.95:
        raise ValueError(f"side_channel: ldpc sends QPSK at code rate side_bits_per_symbol / 2 = {rate:g}; "
                         "5G LDPC realises rates 1/5 .. 0.95 (side_bits_per_symbol 0.4 .. 1.9)")
    k = num_bits + SIDE_CRC_BITS
    n = math.ceil(k / rate)
    n += n % 2
    return k, n, n // 2


def lrisc_plan(model, config, point) -> tuple[int, int, int]:
    """``(G, N_side, N − N_side)`` of a frame at ``point``: groups, side-information channel uses and
    the data budget; ``ValueError`` when the budget cannot carry the side information.

    :param model: anything with ``num_groups(H, W)`` and ``table`` (an :class:`LRISCGeometry` or the model)
    """
    h, w = point.image_shape
    g = model.num_groups(h, w)
    bits, bps = side_bits(g, model.table), config.side_bits_per_symbol
    if getattr(config, "side_channel", "ideal") == "ldpc":
        side = ldpc_side_code(bits, bps)[2]
        how = f"{bits} bits + CRC16, LDPC rate {bps / 2:g}, QPSK"
    else:
        side = side_symbols(g, model.table, bps)
        how = f"{bits} bits at {bps:g} bits per channel use"
    n = point.num_symbols
    if n - side < 1:
        raise ValueError(f"CBR {point.cbr} gives {n} channel uses per {h}x{w} image, not more than the side "
                         f"information's {side} ({how}); raise the CBR or side_bits_per_symbol")
    return g, side, n - side


class LRISCSettings(BaseModel):
    """Settings of ``kind: lrisc`` (strict).

    :param model: ``embedded`` or an ``.safetensors`` file written by the LRISC training (``.json`` beside it)
    :param decoder: ``diffusion`` (the latent-conditioned DDIM decoder, the paper's) or
        ``synthesis`` (the plain synthesis transform ``g_s``: isolates the diffusion's contribution)
    :param diffusion: ``embedded`` or a directory written by stage 3 of the training
    :param length: ``adaptive`` (one calibrated β: the mean over images meets the budget) or
        ``fixed_total`` (per-image β: no image exceeds the budget)
    :param calibration: ``adaptive``: where β is calibrated. ``photos`` (default): the group bits of
        the model's training photos (the embedded corpus minus the ``holdout`` its ``.json`` lists),
        preprocessed like the scenario's images to its size, so that the detail per group matches
        what the scenario sends; ``crops``: the pool of training-crop group bits stored with the
        model (the training's own calibration; at 64 px it spends about 30 % more than the budget on
        whole photos, which carry more detail per pixel than crops)
    :param num_steps: DDIM steps of the diffusion decoder (= NFE)
    :param eta: DDIM stochasticity (0: deterministic given the initial noise)
    :param side_channel: how the lengths (the side information) reach the receiver. ``ideal``: counted
        at ``side_bits_per_symbol`` bits per channel use and delivered without error (a
        capacity-style allowance, as NTSCC-type schemes assume); ``ldpc``: actually sent in the
        frame, before the data symbols — CRC16 + 5G LDPC at rate ``side_bits_per_symbol / 2`` + QPSK,
        over the same channel and noise — and decoded; a CRC failure loses the image (outage, grey
        fallback: without its lengths the receiver cannot parse the data symbols). Its channel uses
        (CRC and code included) are counted.
    :param side_bits_per_symbol: information bits per channel use of the side channel; default 0.5
        (``ldpc``: QPSK with LDPC rate 1/4, whose short word still decodes at 0 dB; rate 1/2, 1.0, loses
        it there)
    :param use_no_eff: the JSCC decoder (and the diffusion's SNR embedding) get the effective SNR
        after equalisation, ``-10·log10(mean no_eff)`` over the sent symbols; identical on AWGN
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "embedded"
    decoder: Literal["diffusion", "synthesis"] = "diffusion"
    diffusion: str = "embedded"
    length: Literal["adaptive", "fixed_total"] = "adaptive"
    calibration: Literal["photos", "crops"] = "photos"
    num_steps: int = Field(20, ge=1)
    eta: float = Field(0.0, ge=0, le=1)
    side_channel: Literal["ldpc", "ideal"] = "ldpc"
    side_bits_per_symbol: float = Field(0.5, gt=0)
    use_no_eff: bool = True

    def check_point(self, point) -> None:
        """Weights exist, CSNR + CBR + image shape given, sides fit the groups, the budget carries the
        side information, and the frame fits the channel's grid (from the model's ``.json``: no torch)."""
        if point.csnr_db is None or point.cbr is None or point.image_shape is None:
            raise ValueError("lrisc needs csnr_db and cbr sweep axes and a data: section")
        _ = point.num_symbols
        path = weights_path(self.model)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise ValueError(f"LRISC weights {path} (+ .json) do not exist")
        if self.decoder == "diffusion":
            d = decoder_dir(self.diffusion)
            for name in ("config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json", "training.json"):
                if not (d / name).is_file():
                    raise ValueError(f"LRISC diffusion decoder file missing: {d / name}")
        geometry = LRISCGeometry.from_file(path)
        g, side, _ = lrisc_plan(geometry, self, point)
        point.grid_info(g * geometry.table.max + (side if self.side_channel == "ldpc" else 0))
