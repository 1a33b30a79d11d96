"""JPEG, JPEG 2000 and WebP through Pillow (libjpeg-turbo, OpenJPEG, libwebp).

**What is counted as payload**, per codec (only bytes a decoder cannot rebuild are kept):

* JPEG: the JFIF file minus its ``APP0``..``APP15`` and ``COM`` segments after SOI (JFIF/EXIF
  metadata, 18 bytes for a plain JFIF header). Baseline with optimised Huffman tables, 4:2:0.
  The decoder reads it as is (three components default to YCbCr).
* JPEG 2000: the raw J2K codestream (no JP2 boxes), minus the OpenJPEG ``COM`` marker segment
  ("Created by OpenJPEG ..."). Irreversible 9/7 wavelet, one quality layer at a target PSNR.
* WebP: the data of the ``VP8 `` chunk; the 20-byte RIFF/``WEBP``/chunk header is rebuilt by the
  decoder from the payload length.
"""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import numpy as np
from PIL import Image

from .base import SourceCodec


def _pil_decode(data: bytes, height: int, width: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        arr = np.asarray(im.convert("RGB"))
    if arr.shape[:2] != (height, width):
        raise ValueError(f"decoded size {arr.shape[1]}x{arr.shape[0]} differs from {width}x{height}")
    return arr


def strip_jpeg_metadata(jpeg: bytes) -> bytes:
    """Drop ``APPn`` (0xFFE0–0xFFEF) and ``COM`` (0xFFFE) segments that follow SOI."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream (no SOI)")
    pos, out = 2, [b"\xff\xd8"]
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and (0xE0 <= jpeg[pos + 1] <= 0xEF or jpeg[pos + 1] == 0xFE):
        pos += 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
    out.append(jpeg[pos:])
    return b"".join(out)


def strip_j2k_comments(j2k: bytes) -> bytes:
    """Drop ``COM`` (0xFF64) marker segments from a J2K main header (before the first SOT)."""
    if j2k[:2] != b"\xff\x4f":
        raise ValueError("not a J2K codestream (no SOC)")
    pos, out = 2, [j2k[:2]]
    while pos + 4 <= len(j2k) and j2k[pos:pos + 2] != b"\xff\x90":
        seg_len = struct.unpack(">H", j2k[pos + 2:pos + 4])[0]
        if j2k[pos:pos + 2] != b"\xff\x64":
            out.append(j2k[pos:pos + 2 + seg_len])
        pos += 2 + seg_len
    out.append(j2k[pos:])
    return b"".join(out)


class JPEGCodec(SourceCodec):
    """Baseline JPEG (libjpeg-turbo via Pillow), quality 1 (worst) .. 100 (best), 4:2:0."""

    name = "JPEG"
    qualities = tuple(range(1, 101))

    @property
    def description(self) -> str:
        import PIL

        return f"{self.name}: libjpeg-turbo via Pillow {PIL.__version__}, 4:2:0, optimised Huffman"

    def _encode_uint8(self, arr: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality), optimize=True,
                                  subsampling="4:2:0")
        return strip_jpeg_metadata(buf.getvalue())

    def _decode_uint8(self, payload: bytes, height: int, width: int) -> np.ndarray:
        return _pil_decode(payload, height, width)


class JPEG2000Codec(SourceCodec):
    """JPEG 2000 (OpenJPEG via Pillow): one layer at a target PSNR [dB], 15 (worst) .. 60 (best).

    The target is OpenJPEG's rate-distortion goal (``quality_mode="dB"``), computed by the
    encoder on its own colour-transformed components, so the measured RGB PSNR differs from it.
    """

    name = "JPEG 2000"
    qualities = tuple(range(15, 61))

    @property
    def description(self) -> str:
        from PIL import features

        return (f"{self.name}: OpenJPEG {features.version('jpg_2000')} via Pillow, "
                "9/7 wavelet, one layer at target PSNR")

    def _encode_uint8(self, arr: np.ndarray, quality: int) -> bytes:
        # OpenJPEG needs every resolution level to keep >= 1 pixel: cap the number of levels
        levels = max(1, min(6, int(math.log2(min(arr.shape[:2]))) + 1))
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG2000", no_jp2=True, irreversible=True,
                                  quality_mode="dB", quality_layers=[float(quality)],
                                  num_resolutions=levels)
        return strip_j2k_comments(buf.getvalue())

    def _decode_uint8(self, payload: bytes, height: int, width: int) -> np.ndarray:
        return _pil_decode(payload, height, width)


class WebPCodec(SourceCodec):
    """Lossy WebP (libwebp via Pillow), quality 0 (worst) .. 100 (best).

    :param method: libwebp effort 0 (fast) .. 6 (best compression); default 6
    """

    name = "WebP"
    qualities = tuple(range(0, 101))

    def __init__(self, method: int = 6):
        if method not in range(7):
            raise ValueError(f"method must be an integer 0..6, got {method!r}")
        self.method = int(method)

    @property
    def options(self) -> dict[str, Any]:
        return {"method": self.method}

    @property
    def description(self) -> str:
        from PIL import features

        return f"{self.name}: libwebp {features.version('webp')} via Pillow, lossy, method {self.method}"

    def _encode_uint8(self, arr: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="WEBP", quality=int(quality), method=self.method,
                                  lossless=False, exact=False)
        riff = buf.getvalue()
        if riff[:4] != b"RIFF" or riff[8:16] != b"WEBPVP8 ":
            raise RuntimeError("libwebp did not write a simple lossy 'VP8 ' file")
        size = struct.unpack("<I", riff[16:20])[0]
        return riff[20:20 + size]

    def _decode_uint8(self, payload: bytes, height: int, width: int) -> np.ndarray:
        pad = b"\x00" if len(payload) % 2 else b""  # RIFF chunks are padded to even length
        riff = (b"RIFF" + struct.pack("<I", 4 + 8 + len(payload) + len(pad)) + b"WEBP"
                + b"VP8 " + struct.pack("<I", len(payload)) + payload + pad)
        return _pil_decode(riff, height, width)
