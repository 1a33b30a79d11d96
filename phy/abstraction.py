"""System-level PHY abstraction and link adaptation, from Sionna SYS (not re-implemented here).

* :class:`PhyAbstraction` replaces bit-true LDPC decoding by a table lookup: the post-equalisation
  SINR of the symbols of each codeword is mapped to one effective SINR by EESM
  (:class:`sionna.sys.EESM`, its beta per MCS), and the codeword error probability is read from
  Sionna's 5G BLER tables at that SINR and the code block size
  (:meth:`sionna.sys.PHYAbstraction.get_bler`, AWGN tables of 5G LDPC with 20 BP iterations,
  interpolated on a 0.1 dB grid). Errors are then drawn with the caller's generator.
* :class:`OuterLoop` wraps :class:`sionna.sys.OuterLoopLinkAdaptation` for one link: it picks the
  38.214 MCS index of the next message from the last effective-SINR report minus an offset that
  grows by ``delta_up`` on a NACK and shrinks by ``delta_up · t / (1 - t)`` on an ACK, so that the
  NACK rate converges to the target ``t``.

MCS indices are those of 3GPP TS 38.214 Table 5.1.3.1-1 (``table 1``: QPSK .. 64-QAM), category
PDSCH (its BLER tables cover indices 3..28). :data:`~linksim.phy.modulation.NR_TABLE1` lists ``index -> (bits per symbol,
rate x 1024)``. Indices 0..2 (rates below 1/5) are absent: Sionna's 5G LDPC rate matching needs
``r >= 1/5`` and has no tables for them.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from .modulation import NR_TABLE1, nr_mcs_index

__all__ = ["NR_TABLE1", "MCS_TABLE_INDEX", "MCS_CATEGORY", "nr_mcs_index", "PhyAbstraction", "OuterLoop"]

#: 38.214 MCS table and category of the BLER tables used (1 = table 5.1.3.1-1; category 1 = PDSCH)
MCS_TABLE_INDEX, MCS_CATEGORY = 1, 1


@lru_cache(maxsize=2)
def _sionna_abstraction(device: str):
    import sionna.sys as sys_  # noqa: PLC0415

    table = os.path.join(os.path.dirname(sys_.__file__), "bler_tables", "PDSCH_table1.json")
    return sys_.PHYAbstraction(load_bler_tables_from=[table], device=device), sys_.EESM(device=device)


class PhyAbstraction:
    """Codeword errors from the effective SINR and Sionna's 5G BLER tables (module notes).

    :param device: torch device of the tables
    """

    def __init__(self, device="cpu"):
        self.device = str(device)
        self.sionna, self.eesm = _sionna_abstraction(self.device)

    def effective_sinr(self, sinr: torch.Tensor, mcs_index: int | torch.Tensor) -> torch.Tensor:
        """EESM over the last axis: ``sinr`` ``[..., L]`` linear per symbol -> ``[...]`` linear."""
        lead = list(sinr.shape[:-1])
        s = sinr.to(self.device, torch.float32).reshape(*lead, sinr.shape[-1], 1, 1, 1)
        mcs = torch.as_tensor(mcs_index, dtype=torch.int32, device=self.device).expand(*lead).unsqueeze(-1)
        return self.eesm(s, mcs, MCS_TABLE_INDEX, per_stream=False).squeeze(-1)

    def bler(self, mcs_index: int | torch.Tensor, cb_size: int, sinr_eff: torch.Tensor) -> torch.Tensor:
        """Codeword error rate ``[...]`` of ``cb_size`` information bits (CRC included) at ``sinr_eff``."""
        s = sinr_eff.to(self.device, torch.float32)
        mcs = torch.as_tensor(mcs_index, dtype=torch.int32, device=self.device).expand(s.shape)
        return self.sionna.get_bler(mcs, MCS_TABLE_INDEX, MCS_CATEGORY,
                                    torch.full(s.shape, int(cb_size), dtype=torch.int32, device=self.device), s)

    def decode(self, sinr: torch.Tensor, mcs_index: int, cb_size: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sinr`` ``[B, C, L]`` (the ``L`` symbols of each codeword) -> ``(ok [B, C] bool, bler [B, C],
        sinr_eff [B, C])``; codeword ``c`` fails with probability ``bler`` (one uniform draw each)."""
        eff = self.effective_sinr(sinr, mcs_index)
        p = self.bler(mcs_index, cb_size, eff).clamp(0.0, 1.0)
        u = torch.rand(p.shape, generator=generator, device=generator.device).to(p.device)
        return u >= p, p, eff


class OuterLoop:
    """Outer-loop link adaptation of ``num_links`` independent links over a sequence of messages
    (Sionna's OLLA; one state per link).

    :param target: NACK rate the loop converges to (the first transmission's message error rate)
    :param delta_up: offset step on a NACK [dB]
    :param num_allocated_re: resource elements a message occupies (the data symbols), used by the
        inner loop's transport-block error estimate
    :param sinr_eff_init_db: the effective SINR assumed before the first report [dB]
    :param num_links: links adapted side by side
    :param device: torch device

    ``mcs()`` -> ``[num_links]`` int, the indices for the next messages; ``report(ack, sinr_eff)``
    (``[num_links]`` bool and linear SINR) after them.
    """

    def __init__(self, target: float, delta_up: float, num_allocated_re: int, sinr_eff_init_db: float,
                 num_links: int = 1, device="cpu"):
        import sionna.sys as sys_  # noqa: PLC0415

        self.device = str(device)
        self._olla = sys_.OuterLoopLinkAdaptation(_sionna_abstraction(self.device)[0], num_ut=num_links,
                                                  bler_target=target, delta_up=delta_up,
                                                  sinr_eff_init=10 ** (sinr_eff_init_db / 10), device=self.device)
        self._re = torch.full((num_links,), int(num_allocated_re), dtype=torch.int32, device=self.device)
        self._feedback = torch.full((num_links,), -1, dtype=torch.int32, device=self.device)
        self._sinr = torch.zeros(num_links, device=self.device)
        self._next: torch.Tensor | None = None

    def mcs(self) -> torch.Tensor:
        """``[num_links]`` MCS indices of the next messages (applies the last report once)."""
        if self._next is None:
            i = self._olla(self._re, self._feedback, self._sinr, MCS_TABLE_INDEX, MCS_CATEGORY)
            self._next = i.to(torch.long).clamp_min(min(NR_TABLE1))
        return self._next

    def report(self, ack, sinr_eff) -> None:
        """Feedback of the messages just sent: ACK/NACK and effective SINR (linear), ``[num_links]``."""
        self.mcs()  # the offset update belongs to the next decision
        self._feedback = torch.as_tensor(ack, device=self.device).reshape(-1).to(torch.int32)
        self._sinr = torch.as_tensor(sinr_eff, dtype=torch.float32, device=self.device).reshape(-1)
        self._next = None

    @property
    def offset_db(self) -> torch.Tensor:
        """``[num_links]`` current SINR offsets [dB]."""
        return self._olla.offset.clone()
