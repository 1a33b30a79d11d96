"""Common interface of the classical source codecs used by the separation baseline.

A :class:`SourceCodec` turns one image into the bytes that the digital link carries and back,
like the codec wrappers of CompressAI's benchmark (``compressai/utils/bench/codecs.py``), with
two differences that matter for a link simulator:

* **The payload is what the link carries, nothing more.** Container boxes (HEIF ``ftyp``/``meta``,
  RIFF, JFIF ``APP0``) are not payload. What the decoder needs in order to rebuild a container or
  to undo padding is modelled as a small fixed header of :data:`HEADER_BITS` bits (image width and
  height, 16 bits each) that the separation method subtracts from its bit budget
  (:func:`~linksim.codecs.classical.budget.bit_budget`). The header itself is assumed to arrive
  intact (it is tiny and would be protected separately in a real system).
* **Decoding a corrupted payload never raises.** :meth:`SourceCodec.safe_decode` returns
  ``DecodeResult(image, ok)``; a corrupted stream that still decodes (HEVC concealment) is used as
  decoded, a stream that does not decode gives ``image=None``.

Images are ``float32`` tensors ``[3, H, W]`` (RGB, values in [0, 1]); :func:`encode_batch` and
:func:`decode_batch` loop over ``[B, 3, H, W]``. Conversion to 8 bits rounds to nearest.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

#: Bits of the side header each payload is assumed to travel with: width and height, 16 bits
#: each (images up to 65535 x 65535). Decoders need nothing else: the chroma format, bit depth
#: and quantiser are signalled inside every codec's own bitstream.
HEADER_BITS = 32


@dataclass(frozen=True)
class DecodeResult:
    """Outcome of :meth:`SourceCodec.safe_decode`.

    :param image: ``[3, H, W]`` float32 in [0, 1], or ``None`` when nothing could be decoded
    :param ok: ``True`` when the decoder accepted the stream without error
    :param error: the decoder's message when ``ok`` is ``False`` (empty otherwise)
    """

    image: torch.Tensor | None
    ok: bool
    error: str = ""


class SourceCodec(abc.ABC):
    """Base class of image codecs that map one image to a byte payload.

    Subclasses set :attr:`name`, :attr:`qualities` and implement :meth:`_encode_uint8` /
    :meth:`_decode_uint8` on ``uint8`` arrays ``[H, W, 3]``; this class handles tensor conversion,
    padding to the codec's block multiple (edge replication, cropped back after decoding) and the
    safe decoding wrapper.

    :attr name: short human-readable codec name, e.g. ``"HEVC intra (BPG-class)"``
    :attr qualities: the quality grid, ordered from worst (smallest payload) to best
    :attr pad_multiple: the encoder gets images whose sides are multiples of this (>= 1)
    :attr header_bits: side-header bits per payload (see :data:`HEADER_BITS`)
    """

    name: str = ""
    qualities: tuple[int, ...] = ()
    pad_multiple: int = 1
    min_side: int = 1
    header_bits: int = HEADER_BITS

    # ------------------------------------------------------------------ public API
    @property
    @abc.abstractmethod
    def description(self) -> str:
        """One line naming the encoder, its version and the settings used."""

    @property
    def options(self) -> dict[str, Any]:
        """Settings that change the payload (part of the size-cache key)."""
        return {}

    @property
    def cache_key(self) -> str:
        """Stable string identifying the codec and its payload-changing options."""
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{type(self).__name__}({opts})"

    def encode(self, image: torch.Tensor, quality: int) -> bytes:
        """Compress one image.

        :param image: ``[3, H, W]`` float tensor, RGB in [0, 1]
        :param quality: one value of :attr:`qualities`
        :output payload: the bytes the link carries (no container; see module notes)
        """
        if quality not in self.qualities:
            raise ValueError(
                f"{self.name}: quality {quality!r} not in the grid "
                f"[{self.qualities[0]} .. {self.qualities[-1]}] (worst .. best)"
            )
        # The decoder learns the true size from the side header and crops the padding away.
        padded = _pad(to_uint8(image), self.pad_multiple, self.min_side)
        return self._encode_uint8(padded, quality)

    def decode(self, payload: bytes, height: int, width: int) -> torch.Tensor:
        """Decompress one payload; raises ``ValueError`` if the stream cannot be decoded.

        :param payload: bytes from :meth:`encode` (possibly corrupted)
        :param height: image height [pixels] (from the side header)
        :param width: image width [pixels] (from the side header)
        :output image: ``[3, height, width]`` float32 in [0, 1]
        """
        ph, pw = _padded_shape(height, width, self.pad_multiple, self.min_side)
        arr = self._decode_uint8(bytes(payload), ph, pw)
        if arr.ndim != 3 or arr.shape[0] < height or arr.shape[1] < width or arr.shape[2] != 3:
            raise ValueError(
                f"{self.name}: decoded shape {arr.shape} does not cover {height}x{width}"
            )
        return from_uint8(arr[:height, :width])

    def safe_decode(self, payload: bytes, height: int, width: int) -> DecodeResult:
        """:meth:`decode` that never raises (for payloads that crossed a noisy link).

        Decoders run in a subprocess (HEVC, VVC) or in Pillow, so a malformed stream gives an
        error, not a crash of the simulator.
        """
        try:
            return DecodeResult(self.decode(payload, height, width), True)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is an outcome, not a bug
            return DecodeResult(None, False, f"{type(exc).__name__}: {exc}".splitlines()[0])

    # ---------------------------------------------------------------- subclass hooks
    @abc.abstractmethod
    def _encode_uint8(self, arr: np.ndarray, quality: int) -> bytes:
        """Encode ``arr`` ``[H, W, 3]`` uint8 (sides already padded)."""

    @abc.abstractmethod
    def _decode_uint8(self, payload: bytes, height: int, width: int) -> np.ndarray:
        """Decode to ``[height, width, 3]`` uint8 (the padded size); raise on failure."""

    def __repr__(self) -> str:
        return f"<{self.cache_key}: {self.name}>"


# ---------------------------------------------------------------------- helpers
def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float tensor in [0, 1] -> ``[H, W, 3]`` uint8 (round to nearest)."""
    # torch is imported where a tensor is converted, not with the module: building a codec (the
    # validator checks a scenario's codec options that way, `linksim validate`) stays torch-free
    import torch

    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor [3, H, W], got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape [3, H, W], got {list(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor in [0, 1], got {image.dtype}")
    arr = (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(arr.permute(1, 2, 0).numpy())


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 -> ``[3, H, W]`` float32 in [0, 1]."""
    import torch  # here, not with the module: see to_uint8

    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div_(255)


def image_hash(image: torch.Tensor) -> str:
    """SHA-256 (16 hex digits) of the 8-bit version of ``image`` — the size-cache key."""
    arr = to_uint8(image)
    head = f"{arr.shape}".encode()
    return hashlib.sha256(head + arr.tobytes()).hexdigest()[:16]


def _padded_shape(height: int, width: int, multiple: int, min_side: int) -> tuple[int, int]:
    if height < 1 or width < 1:
        raise ValueError(f"image size must be at least 1x1, got {height}x{width}")

    def up(x: int) -> int:
        x = max(x, min_side)
        return -(-x // multiple) * multiple

    return up(height), up(width)


def _pad(arr: np.ndarray, multiple: int, min_side: int) -> np.ndarray:
    # Edge replication keeps the padded border cheap to code and leaves the cropped area intact.
    h, w = arr.shape[:2]
    ph, pw = _padded_shape(h, w, multiple, min_side)
    if (ph, pw) == (h, w):
        return arr
    return np.pad(arr, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")


def encode_batch(codec: SourceCodec, images: torch.Tensor, quality: int) -> list[bytes]:
    """Encode every image of ``images`` ``[B, 3, H, W]`` at one quality."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape [B, 3, H, W], got {list(images.shape)}")
    return [codec.encode(img, quality) for img in images]


def decode_batch(
    codec: SourceCodec, payloads: Sequence[bytes], height: int, width: int
) -> list[DecodeResult]:
    """:meth:`SourceCodec.safe_decode` of each payload (all of size ``height`` x ``width``)."""
    return [codec.safe_decode(p, height, width) for p in payloads]
