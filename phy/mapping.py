"""QAM mapping and LLR demapping (thin wrappers around Sionna's ``Mapper`` / ``Demapper``).

Gray-labelled constellations with unit average energy ``E|x|² = 1``. BPSK is Sionna's 1-bit PAM
(points ``±1`` on the real axis). LLRs follow Sionna's sign convention
``LLR = ln(P(b=1|y) / P(b=0|y))`` (logits), which is what :class:`sionna.phy.fec.ldpc.LDPC5GDecoder`
expects.
"""

from __future__ import annotations

import torch
from sionna.phy.mapping import Demapper, Mapper
from torch import nn

from .modulation import MODULATIONS, bits_per_symbol

__all__ = ["MODULATIONS", "bits_per_symbol", "QAMMapper", "QAMDemapper"]

def _constellation_args(num_bits_per_symbol: int) -> tuple[str, int]:
    # Sionna's "qam" needs an even number of bits; BPSK is its 1-bit "pam" (real ±1).
    bps = bits_per_symbol(num_bits_per_symbol)
    return ("pam" if bps == 1 else "qam"), bps


class QAMMapper(nn.Module):
    """Bits -> Gray QAM symbols with unit average energy.

    :param num_bits_per_symbol: 1 (BPSK), 2, 4, 6 or 8
    :param precision: ``"single"`` (complex64) or ``"double"`` (complex128)
    :param device: torch device

    :input bits: ``[..., n]`` float or int in {0, 1}, ``n`` a multiple of ``num_bits_per_symbol``
    :output x: ``[..., n / num_bits_per_symbol]`` complex

    >>> QAMMapper(4)(torch.zeros(2, 8)).shape
    torch.Size([2, 2])
    """

    def __init__(self, num_bits_per_symbol: int, precision: str = "single", device="cpu"):
        super().__init__()
        ctype, bps = _constellation_args(num_bits_per_symbol)
        self.num_bits_per_symbol = bps
        self._mapper = Mapper(ctype, bps, precision=precision, device=str(device))

    @property
    def points(self) -> torch.Tensor:
        """``[2**num_bits_per_symbol]`` complex constellation points (index = bit label)."""
        return self._mapper.constellation()

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        return self._mapper(bits)


class QAMDemapper(nn.Module):
    """Equalised symbols + per-symbol noise variance -> bit LLRs (or hard bits).

    :param num_bits_per_symbol: 1 (BPSK), 2, 4, 6 or 8
    :param method: ``"app"`` (exact log-MAP) or ``"maxlog"``
    :param hard_out: return hard decisions in {0, 1} instead of LLRs
    :param precision: ``"single"`` or ``"double"``
    :param device: torch device

    :input y: ``[B, N]`` complex, equalised symbols (``y = x + e``, unbiased)
    :input no_eff: float, ``[B, 1]`` or ``[B, N]`` float: variance of ``e`` per complex symbol
        (post-equalisation; e.g. ``N0 / |h|²`` after ZF)
    :output llr: ``[B, N * num_bits_per_symbol]`` float, ``ln P(b=1|y) / P(b=0|y)``

    >>> QAMDemapper(2)(torch.zeros(3, 5, dtype=torch.complex64), torch.ones(3, 5)).shape
    torch.Size([3, 10])
    """

    def __init__(self, num_bits_per_symbol: int, method: str = "app", hard_out: bool = False,
                 precision: str = "single", device="cpu"):
        super().__init__()
        ctype, bps = _constellation_args(num_bits_per_symbol)
        self.num_bits_per_symbol = bps
        self._demapper = Demapper(method, ctype, bps, hard_out=hard_out, precision=precision,
                                  device=str(device))

    def forward(self, y: torch.Tensor, no_eff) -> torch.Tensor:
        if not isinstance(no_eff, torch.Tensor):
            no_eff = torch.tensor(float(no_eff), device=y.device)
        return self._demapper(y, no_eff)
