"""SNR conventions of linksim (DESIGN.md §3), in one place.

* **CSNR** [dB] is ``10 log10(Es / N0)`` per complex *data* symbol at the receiver input, with unit
  average symbol energy ``Es = 1`` and unit average channel energy. Hence ``N0 = 10^(-CSNR/10)``
  and the noise is ``CN(0, N0)`` (variance ``N0/2`` per real dimension).
* **Eb/N0** [dB] (digital chains) is ``CSNR - 10 log10(bits_per_symbol * coderate)``.

Unlike :func:`sionna.phy.utils.ebnodb2no`, no OFDM overhead correction (pilots, cyclic prefix) is
applied: CSNR is defined per *data* symbol, and the overhead is reported separately
(:attr:`linksim.phy.links.GridInfo.overhead`).

Every function accepts Python floats (and returns a float) or tensors (and returns a tensor of the
same shape and dtype).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "csnr_db_to_no",
    "no_to_csnr_db",
    "ebnodb_to_no",
    "ebno_db_to_csnr_db",
    "csnr_db_to_ebno_db",
]


def _log10(x):
    return torch.log10(x) if isinstance(x, torch.Tensor) else math.log10(x)


def _check_rate(bits_per_symbol: float, coderate: float) -> float:
    if bits_per_symbol <= 0:
        raise ValueError(f"bits_per_symbol must be positive; got {bits_per_symbol}")
    if not 0 < coderate <= 1:
        raise ValueError(f"coderate must be in (0, 1]; got {coderate}")
    return float(bits_per_symbol) * float(coderate)


def csnr_db_to_no(csnr_db):
    """Noise variance ``N0 = 10^(-CSNR/10)`` for unit-energy symbols.

    :param csnr_db: CSNR [dB], float or tensor
    :return: linear ``N0`` (complex noise variance), same type as the input

    >>> csnr_db_to_no(10.0)
    0.1
    """
    return 10.0 ** (-csnr_db / 10.0)


def no_to_csnr_db(no):
    """Inverse of :func:`csnr_db_to_no`: ``CSNR = -10 log10(N0)`` [dB]."""
    return -10.0 * _log10(no)


def ebno_db_to_csnr_db(ebno_db, bits_per_symbol: float, coderate: float = 1.0):
    """``CSNR = Eb/N0 + 10 log10(bits_per_symbol * coderate)`` [dB].

    :param ebno_db: Eb/N0 [dB], float or tensor
    :param bits_per_symbol: bits per complex symbol (e.g. 4 for 16-QAM)
    :param coderate: information bits per coded bit, in (0, 1]
    """
    return ebno_db + 10.0 * math.log10(_check_rate(bits_per_symbol, coderate))


def csnr_db_to_ebno_db(csnr_db, bits_per_symbol: float, coderate: float = 1.0):
    """``Eb/N0 = CSNR - 10 log10(bits_per_symbol * coderate)`` [dB]."""
    return csnr_db - 10.0 * math.log10(_check_rate(bits_per_symbol, coderate))


def ebnodb_to_no(ebno_db, bits_per_symbol: float, coderate: float = 1.0):
    """Noise variance ``N0`` for a given Eb/N0 [dB], with ``Es = 1``.

    ``N0 = 1 / (10^(Eb/N0 / 10) * bits_per_symbol * coderate)``; no OFDM overhead correction
    (see the module docstring).

    >>> round(ebnodb_to_no(0.0, 4, 0.5), 6)
    0.5
    """
    return csnr_db_to_no(ebno_db_to_csnr_db(ebno_db, bits_per_symbol, coderate))
