"""Forward error correction: 3GPP CRC and 5G NR LDPC with rate matching (Sionna blocks).

Bits are float tensors in {0, 1}; LLRs follow Sionna's logit convention
``ln P(b=1) / P(b=0)`` (what :class:`linksim.phy.mapping.QAMDemapper` returns).
"""

from __future__ import annotations

import torch
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from torch import nn

__all__ = ["CRC_LENGTHS", "crc_length", "CRC", "LDPC"]

#: 3GPP TS 38.212 §5.1 CRC polynomials -> number of parity bits
CRC_LENGTHS = {"CRC24A": 24, "CRC24B": 24, "CRC24C": 24, "CRC16": 16, "CRC11": 11, "CRC6": 6}


def crc_length(crc: str | None) -> int:
    """Parity bits of a CRC name (``None`` -> 0)."""
    if crc is None:
        return 0
    if crc not in CRC_LENGTHS:
        raise ValueError(f"crc must be one of {tuple(CRC_LENGTHS)} or None; got {crc!r}")
    return CRC_LENGTHS[crc]


class CRC(nn.Module):
    """Append / check a 3GPP CRC on blocks of ``k`` bits (Sionna ``CRCEncoder``/``CRCDecoder``).

    :param crc: ``CRC24A``, ``CRC24B``, ``CRC24C``, ``CRC16``, ``CRC11`` or ``CRC6``
    :param k: payload bits per block (the generator matrix is built once for it)
    :param device: torch device

    ``encode``: ``[..., k]`` -> ``[..., k + L]``. ``decode``: ``[..., k + L]`` ->
    (``[..., k]`` payload, ``[...]`` bool, ``True`` where the parity matches).

    >>> crc = CRC("CRC16", 40); x = crc.encode(torch.zeros(2, 40)); x[0, 3] = 1
    >>> crc.decode(x)[1]
    tensor([False,  True])
    """

    def __init__(self, crc: str, k: int, device="cpu"):
        super().__init__()
        self.length = crc_length(crc)
        if self.length == 0:
            raise ValueError("CRC needs a polynomial name; use no CRC block instead of crc=None")
        if k < 1:
            raise ValueError(f"CRC payload k must be positive; got {k}")
        self.k = int(k)
        self._enc = CRCEncoder(crc, k=self.k, device=str(device))
        self._dec = CRCDecoder(self._enc, device=str(device))

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        return self._enc(bits)

    def decode(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        payload, ok = self._dec(bits)
        return payload, ok.squeeze(-1)


class LDPC(nn.Module):
    """5G NR LDPC code with rate matching (3GPP TS 38.212), Sionna encoder + BP decoder.

    :param k: information bits per codeword (including any CRC)
    :param n: codeword bits after rate matching (puncturing/shortening), ``k < n``
    :param num_iter: belief-propagation iterations (flooding schedule, no early stop)
    :param num_bits_per_symbol: if given, the 38.212 §5.4.2.2 bit interleaver for that
        modulation is applied after rate matching (and undone before decoding)
    :param cn_update: check-node rule (``boxplus-phi`` exact, ``minsum``, ``offset-minsum`` ...)
    :param device: torch device

    ``encode``: ``[..., k]`` -> ``[..., n]``; ``decode``: LLRs ``[..., n]`` -> hard bits ``[..., k]``.

    **HARQ.** ``encode(bits, rv=[r0, r1, ...])`` gives one rate-matched codeword per redundancy
    version, ``[..., len(rv), n]``: ``n`` bits of the mother code's circular buffer read from the
    38.212 Table 5.4.2.1-2 start position of each RV (RV 0 = the plain ``encode``). ``decode(llr,
    rv=[...])`` takes the stacked LLRs ``[..., len(rv), n]`` of the transmissions received so far
    and decodes their sum in the circular buffer: bits never sent stay at LLR 0, bits sent twice
    add up. Chase combining is ``rv = [0, 0, ...]`` (the same codeword each time); incremental
    redundancy ``rv = [0, 2, 3, 1]`` (further parts of the lower-rate mother code). Both are
    Sionna's HARQ-IR rate matching (``LDPC5GEncoder(..., rv=)``, ``LDPC5GDecoder(harq_mode=True)``).

    >>> code = LDPC(64, 128); u = torch.ones(1, 64); c = code.encode(u, rv=[0, 2])
    >>> c.shape, torch.equal(code.decode(20.0 * (2 * c - 1), rv=[0, 2]), u)
    (torch.Size([1, 2, 128]), True)

    >>> code = LDPC(64, 128); u = torch.ones(1, 64)
    >>> torch.equal(code.decode(20.0 * (2 * code.encode(u) - 1)), u)
    True
    """

    def __init__(self, k: int, n: int, num_iter: int = 20, num_bits_per_symbol: int | None = None,
                 cn_update: str = "boxplus-phi", device="cpu"):
        super().__init__()
        if not (0 < k < n):
            raise ValueError(f"LDPC needs 0 < k < n; got k={k}, n={n}")
        if num_iter < 1:
            raise ValueError(f"num_iter must be positive; got {num_iter}")
        self.k, self.n, self.num_iter = int(k), int(n), int(num_iter)
        self._enc = LDPC5GEncoder(self.k, self.n, num_bits_per_symbol=num_bits_per_symbol,
                                  device=str(device), check_input=False)
        self._dec = LDPC5GDecoder(self._enc, cn_update=cn_update, hard_out=True,
                                  return_infobits=True, num_iter=self.num_iter, device=str(device))
        self._cn_update, self._device = cn_update, str(device)
        self._harq_dec: LDPC5GDecoder | None = None  # built on the first HARQ decode

    @property
    def coderate(self) -> float:
        return self.k / self.n

    def encode(self, bits: torch.Tensor, rv: list[int] | tuple[int, ...] | None = None) -> torch.Tensor:
        """``[..., k]`` -> ``[..., n]`` (``rv=None``) or ``[..., len(rv), n]`` (one codeword per RV)."""
        return self._enc(bits) if rv is None else self._enc(bits, rv=list(rv))

    def decode(self, llr: torch.Tensor, rv: list[int] | tuple[int, ...] | None = None) -> torch.Tensor:
        """LLRs ``[..., n]`` (``rv=None``) or ``[..., len(rv), n]`` (HARQ combining) -> ``[..., k]``."""
        if rv is None:
            return self._dec(llr)
        rv = list(rv)
        if llr.dim() < 2 or llr.shape[-2] != len(rv):
            raise ValueError(f"HARQ decoding needs LLRs [..., len(rv)={len(rv)}, n]; got {tuple(llr.shape)}")
        if all(r == 0 for r in rv):
            # Chase combining: every copy fills the same positions, so the combination is the sum;
            # the plain decoder's graph is pruned to the sent bits (several times faster on a CPU
            # than HARQ mode's full mother graph, which IR needs)
            return self._dec(llr.sum(dim=-2))
        if self._harq_dec is None:
            self._harq_dec = LDPC5GDecoder(self._enc, cn_update=self._cn_update, hard_out=True,
                                           return_infobits=True, num_iter=self.num_iter,
                                           harq_mode=True, device=self._device)
        return self._harq_dec(llr, rv=rv)
