"""Bit budget of the separation baseline and fitting a source codec's quality to it.

The budget (DESIGN.md §3) is what the source coder may spend so that its payload, protected by
CRC + 5G LDPC and mapped to M-QAM, fills ``N = floor(ρ·3HW)`` complex channel symbols:

.. math::

    B = \\left\\lfloor \\frac{N \\log_2 M}{n} \\right\\rfloor (k - c) - h

with ``n`` the LDPC codeword length, ``k`` its information length, ``c`` CRC bits per codeword
(the digital chain attaches one CRC per codeword) and ``h`` the side-header bits (width and
height, :data:`~linksim.codecs.classical.base.HEADER_BITS`). This equals "floor(ρ·3HW·log2 M /
n)·k minus CRC and header bits". Unused coded bits of the last partial codeword are not counted
(they would be padding). The budget does not depend on the SNR, so the size-vs-quality table of
an image is computed once per codec and reused at every sweep point (:class:`SizeCache`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from .base import SourceCodec, image_hash


def as_fraction(cbr: float | str | Fraction) -> Fraction:
    """CBR as an exact fraction: ``"1/24"``, ``Fraction(1, 24)`` or a float (``1/24`` -> 1/24).

    Floats are rounded to the nearest fraction with denominator <= 10^6 so that ``1/24 * 12288``
    gives exactly 512 symbols, not 511.99...
    """
    if isinstance(cbr, Fraction):
        frac = cbr
    elif isinstance(cbr, str):
        try:
            frac = Fraction(cbr.replace(" ", ""))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"cbr must be a number or 'a/b', got {cbr!r}") from None
    else:
        frac = Fraction(float(cbr)).limit_denominator(1_000_000)
    if frac <= 0:
        raise ValueError(f"cbr must be positive, got {cbr!r}")
    return frac


def num_channel_symbols(cbr: float | str | Fraction, height: int, width: int) -> int:
    """``N = floor(ρ·3HW)`` complex data symbols for an ``height`` x ``width`` RGB image."""
    return math.floor(as_fraction(cbr) * 3 * height * width)


def bit_budget(cbr: float | str | Fraction, height: int, width: int, bits_per_symbol: int,
               k: int, n: int, crc_bits: int = 24, header_bits: int = 32) -> int:
    """Source bits available to the codec (see module equation); 0 if nothing is left.

    :param cbr: channel bandwidth ratio ρ = N / (3HW)
    :param height: image height [pixels]
    :param width: image width [pixels]
    :param bits_per_symbol: log2 M of the QAM constellation (2 = QPSK, 4 = 16-QAM, ...)
    :param k: LDPC information bits per codeword (including the CRC)
    :param n: LDPC codeword length [coded bits]
    :param crc_bits: CRC bits per codeword (24 for CRC24A; 0 without CRC)
    :param header_bits: side-header bits subtracted once per image
    :output budget: payload bits (int >= 0)

    >>> bit_budget("1/24", 64, 64, 4, 512, 1024)  # 512 symbols -> 2 codewords
    944
    """
    if bits_per_symbol < 1 or n < 1 or not 0 < k <= n or not 0 <= crc_bits < k or header_bits < 0:
        raise ValueError(f"invalid link parameters: bits_per_symbol={bits_per_symbol}, k={k}, "
                         f"n={n}, crc_bits={crc_bits}, header_bits={header_bits}")
    num_codewords = num_channel_symbols(cbr, height, width) * bits_per_symbol // n
    return max(num_codewords * (k - crc_bits) - header_bits, 0)


def ideal_budget(cbr: float | str | Fraction, height: int, width: int, snr: float) -> float:
    """Capacity bound ``ρ·3HW·log2(1 + snr)`` [bits] of N channel uses of an AWGN channel.

    :param snr: linear SNR Es/N0 (not dB)
    """
    if snr < 0:
        raise ValueError(f"snr must be linear and >= 0, got {snr}")
    return float(as_fraction(cbr) * 3 * height * width) * math.log2(1.0 + snr)


class SizeCache:
    """Payload sizes per image, codec and quality: in memory, optionally mirrored to a JSON file.

    Keys are ``"<image sha256 prefix>|<codec.cache_key>"``; values map quality -> payload bytes.
    Encoding is deterministic, so a size measured once holds for every sweep point and run.

    :param path: JSON file to read at start and rewrite after every new entry (``None``: memory only)
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self._sizes: dict[str, dict[int, int]] = {}
        if self.path is not None and self.path.exists():
            raw = json.loads(self.path.read_text())
            self._sizes = {k: {int(q): int(s) for q, s in v.items()} for k, v in raw.items()}

    @staticmethod
    def key(codec: SourceCodec, image: torch.Tensor) -> str:
        return f"{image_hash(image)}|{codec.cache_key}"

    def get(self, key: str, quality: int) -> int | None:
        return self._sizes.get(key, {}).get(int(quality))

    def put(self, key: str, quality: int, num_bytes: int) -> None:
        self._sizes.setdefault(key, {})[int(quality)] = int(num_bytes)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(json.dumps(self._sizes, sort_keys=True))
            os.replace(tmp, self.path)  # atomic: a killed run never leaves half a file

    def table(self, key: str) -> dict[int, int]:
        """Known quality -> bytes for one key (a copy)."""
        return dict(self._sizes.get(key, {}))

    def __len__(self) -> int:
        return sum(len(v) for v in self._sizes.values())


@dataclass(frozen=True)
class FitResult:
    """The best quality whose payload fits the budget.

    :param quality: value from ``codec.qualities``
    :param payload: the encoded bytes at that quality
    :param bits: ``8 * len(payload)`` <= budget
    :param num_encodes: encoder calls spent on this fit (cache hits excluded)
    """

    quality: int
    payload: bytes
    bits: int
    num_encodes: int


def fit_quality(codec: SourceCodec, image: torch.Tensor, budget_bits: int,
                cache: SizeCache | None = None, scan: int = 2) -> FitResult | None:
    """Choose the best quality of ``codec`` whose payload fits ``budget_bits``; ``None`` = outage.

    Bisection over the quality grid (payload size grows with quality), then a check of the
    ``scan`` next better qualities: encoders are not strictly monotone near some qualities (rate
    control, mode decisions), and a better quality that happens to fit is taken and the search
    continues above it. The returned quality's immediate successor never fits.

    :param image: ``[3, H, W]`` float in [0, 1]
    :param budget_bits: payload bits available (from :func:`bit_budget`)
    :param cache: sizes already measured (shared across sweep points); ``None``: a private one
    :param scan: number of better qualities checked past the bisection boundary (>= 1)
    :output result: :class:`FitResult`, or ``None`` when even the worst quality does not fit
    """
    cache = cache if cache is not None else SizeCache()
    key = SizeCache.key(codec, image)
    qs = codec.qualities
    payloads: dict[int, bytes] = {}
    encodes = 0

    def size(i: int) -> int:
        nonlocal encodes
        q = qs[i]
        cached = cache.get(key, q)
        if cached is not None:
            return cached
        payloads[i] = codec.encode(image, q)
        encodes += 1
        cache.put(key, q, len(payloads[i]))
        return len(payloads[i])

    def fits(i: int) -> bool:
        return 8 * size(i) <= budget_bits

    if not fits(0):
        return None
    lo, last = 0, len(qs) - 1
    if fits(last):
        lo = last
    else:
        hi = last
        while True:
            while hi - lo > 1:  # invariant: lo fits, hi does not
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid)
            better = [j for j in range(hi + 1, min(hi + 1 + max(scan, 1), len(qs))) if fits(j)]
            if not better:
                break
            lo, hi = better[-1], last
            if fits(last):
                lo = last
                break
            if hi - lo <= 1:
                break
    payload = payloads.get(lo)
    if payload is None:
        payload = codec.encode(image, qs[lo])
        encodes += 1
    return FitResult(quality=qs[lo], payload=payload, bits=8 * len(payload), num_encodes=encodes)


def size_table(codec: SourceCodec, image: torch.Tensor, cache: SizeCache | None = None) -> dict[int, int]:
    """Payload bytes at every quality of the grid (worst to best), via ``cache`` when given."""
    cache = cache if cache is not None else SizeCache()
    key = SizeCache.key(codec, image)
    out = {}
    for q in codec.qualities:
        s = cache.get(key, q)
        if s is None:
            s = len(codec.encode(image, q))
            cache.put(key, q, s)
        out[q] = s
    return out
