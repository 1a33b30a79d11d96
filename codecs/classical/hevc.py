"""HEVC intra coding (the core of BPG) with x265 through ``pillow-heif``.

Encoding: ``pillow-heif`` (libheif + x265) writes a HEIF file at constant QP
(``enc_params={'x265:qp': QP}``, like ``bpgenc -q``). The HEIF boxes are parsed and the HEVC
elementary stream is rebuilt from them: the parameter sets stored in the ``hvcC`` box
(VPS, SPS, PPS) followed by the slice NAL units of the item data in ``mdat``.

**What is counted as payload**: those NAL units, each framed by a 3-byte Annex-B start code
``00 00 01`` (3 bytes per NAL unit, 4 units for one image: 12 bytes). SEI NAL units, if any, are
dropped (they carry no picture data). Not counted: the HEIF container (``ftyp``, ``meta`` with
``hdlr``/``iloc``/``iinf``/``iprp``, the ``mdat`` header, 4-byte NAL length fields), about
300 bytes per file, which a link would not carry: BPG, too, replaces it by a few header bytes.

Decoding: ffmpeg's native HEVC decoder (``imageio-ffmpeg`` binary) reads the Annex-B stream in a
subprocess and converts to RGB with the stream's VUI (full-range BT.601, as libheif signals).
For 4:4:4 this matches libheif/libde265's own decoding to +-1 level; for 4:2:0 ffmpeg's
accurate chroma interpolation (``_ffmpeg.SWS_FLAGS``) gives ~0.6 dB more PSNR than libheif's.

Images are padded by edge replication to multiples of 8 pixels (x265's minimum coding block),
and to at least 64x64 (libheif otherwise pads smaller images itself, to 64x64), and cropped back
after decoding.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from . import _ffmpeg
from .base import SourceCodec

_HEVC_SEI_TYPES = (39, 40)  # PREFIX_SEI_NUT, SUFFIX_SEI_NUT
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
            "slower", "veryslow", "placebo")
# boxes whose children follow the header directly (value: bytes of version/flags to skip)
_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}


def _boxes(data: bytes, start: int, end: int):
    """Yield ``(type, payload_start, box_end)`` of the ISO-BMFF boxes in ``data[start:end]``."""
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", data[off + 8:off + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr or off + size > end:
            raise ValueError(f"malformed box {typ!r} at offset {off}")
        yield typ, off + hdr, off + size
        off += size


def _find_box(data: bytes, path: list[bytes]) -> bytes:
    start, end = 0, len(data)
    for depth, name in enumerate(path):
        for typ, s, e in _boxes(data, start, end):
            if typ == name:
                start, end = s + (_CONTAINERS.get(typ, 0) if depth < len(path) - 1 else 0), e
                break
        else:
            raise ValueError(f"HEIF box {b'/'.join(path[:depth + 1]).decode()} not found")
    return data[start:end]


def heif_to_nal_units(heif: bytes) -> list[bytes]:
    """HEVC NAL units of the primary image of a single-image HEIF file.

    Parameter sets from ``meta/iprp/ipco/hvcC``, then the length-prefixed NAL units in ``mdat``
    (pillow-heif writes one image item whose data is the whole ``mdat``; checked here).

    :param heif: bytes of a HEIF file written by libheif
    :output nals: NAL units without start codes or length fields
    """
    hvcc = _find_box(heif, [b"meta", b"iprp", b"ipco", b"hvcC"])
    length_size = (hvcc[21] & 0x03) + 1
    nals, pos = [], 23
    for _ in range(hvcc[22]):  # numOfArrays
        count = struct.unpack(">H", hvcc[pos + 1:pos + 3])[0]
        pos += 3
        for _ in range(count):
            n = struct.unpack(">H", hvcc[pos:pos + 2])[0]
            nals.append(hvcc[pos + 2:pos + 2 + n])
            pos += 2 + n
    mdat = _find_box(heif, [b"mdat"])
    pos = 0
    while pos < len(mdat):
        n = int.from_bytes(mdat[pos:pos + length_size], "big")
        if n == 0 or pos + length_size + n > len(mdat):
            raise ValueError("mdat is not a sequence of length-prefixed NAL units")
        nals.append(mdat[pos + length_size:pos + length_size + n])
        pos += length_size + n
    return nals


def nal_type(nal: bytes) -> int:
    """HEVC ``nal_unit_type`` (6 bits after the forbidden-zero bit)."""
    return (nal[0] >> 1) & 0x3F


class HEVCCodec(SourceCodec):
    """HEVC intra (BPG-class): x265 at constant QP via pillow-heif, raw NAL units as payload.

    :param chroma: ``"420"`` (BPG's default) or ``"444"``
    :param preset: x265 preset; default ``"veryslow"`` (BPG's effort level; ~25 ms per 128x128
        image on one core, so it costs tests little)

    Quality = x265 QP; the grid runs from QP 51 (worst) to QP 0 (best).

    .. rubric:: Example

    >>> import torch
    >>> codec = HEVCCodec()
    >>> payload = codec.encode(torch.rand(3, 32, 32), 32)
    >>> codec.decode(payload, 32, 32).shape
    torch.Size([3, 32, 32])
    """

    name = "HEVC intra (BPG-class)"
    qualities = tuple(range(51, -1, -1))
    pad_multiple = 8
    min_side = 64  # libheif hands x265 at least 64x64 frames (measured); padding here is cheaper

    def __init__(self, chroma: str = "420", preset: str = "veryslow"):
        chroma = str(chroma)
        if chroma not in ("420", "444"):
            raise ValueError(f"chroma must be '420' or '444', got {chroma!r}")
        if preset not in _PRESETS:
            raise ValueError(f"preset must be one of {', '.join(_PRESETS)}; got {preset!r}")
        self.chroma = chroma
        self.preset = preset

    @property
    def options(self) -> dict[str, Any]:
        return {"chroma": self.chroma, "preset": self.preset}

    @property
    def description(self) -> str:
        import pillow_heif

        enc = pillow_heif.libheif_info().get("HEIF", "x265")
        return (f"{self.name}: {enc} via pillow-heif {pillow_heif.__version__}, constant QP, "
                f"{self.chroma} 8-bit, preset {self.preset}; decoder ffmpeg {_ffmpeg.ffmpeg_version()}")

    def _encode_uint8(self, arr: np.ndarray, quality: int) -> bytes:
        import pillow_heif

        h, w = arr.shape[:2]
        heif = pillow_heif.from_bytes("RGB", (w, h), arr.tobytes())
        buf = io.BytesIO()
        heif.save(buf, format="HEIF", chroma=int(self.chroma),
                  enc_params={"x265:qp": str(int(quality)), "preset": self.preset})
        nals = [n for n in heif_to_nal_units(buf.getvalue()) if nal_type(n) not in _HEVC_SEI_TYPES]
        return _ffmpeg.join_annexb(nals)

    def _decode_uint8(self, payload: bytes, height: int, width: int) -> np.ndarray:
        return _ffmpeg.decode_raw("hevc", payload, height, width)
