"""Classical source codecs for the separation baseline, and bit-budget fitting.

``CODECS`` maps short names to codec classes; :func:`get_codec` builds one::

    >>> from linksim.codecs.classical import get_codec
    >>> get_codec("hevc", chroma="444").name
    'HEVC intra (BPG-class)'
"""

from __future__ import annotations

import lazy_loader

from .base import HEADER_BITS, DecodeResult, SourceCodec, decode_batch, encode_batch, image_hash
from .hevc import HEVCCodec
from .pillow_codecs import JPEG2000Codec, JPEGCodec, WebPCodec
from .vvc import VVCCodec

CODECS: dict[str, type[SourceCodec]] = {
    "hevc": HEVCCodec,
    "vvc": VVCCodec,
    "jpeg": JPEGCodec,
    "jpeg2000": JPEG2000Codec,
    "webp": WebPCodec,
}


def get_codec(name: str, **opts) -> SourceCodec:
    """Build the codec registered as ``name`` with its options (e.g. ``chroma``, ``preset``).

    :raises ValueError: unknown name (the message lists the known ones) or a bad option
    """
    try:
        cls = CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(sorted(CODECS))}") from None
    try:
        return cls(**opts)
    except TypeError as exc:
        raise ValueError(f"codec {name!r}: {exc}") from None


# the budget fitting (torch) is imported on first use, so that the codec table and the codecs
# themselves load without torch (the validator builds a scenario's codec to check its options)
_lazy_getattr, _, _ = lazy_loader.attach(__name__, submod_attrs={
    "budget": ["FitResult", "SizeCache", "bit_budget", "fit_quality", "ideal_budget"]})


def __getattr__(name: str):
    return _lazy_getattr(name)


__all__ = [
    "CODECS", "HEADER_BITS", "DecodeResult", "FitResult", "HEVCCodec", "JPEG2000Codec",
    "JPEGCodec", "SizeCache", "SourceCodec", "VVCCodec", "WebPCodec", "bit_budget",
    "decode_batch", "encode_batch", "fit_quality", "get_codec", "ideal_budget", "image_hash",
]
