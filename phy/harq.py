"""Hybrid ARQ with soft combining over a :class:`~linksim.phy.chains.DigitalChain`.

Each codeword carries its own CRC, so the receiver acknowledges codewords one by one (like 5G's
code-block-group retransmission): after transmission ``t`` every codeword whose CRC fails is sent
again, the others are not. The receiver keeps the LLRs of every transmission of a codeword and
decodes their combination:

* ``chase``: every transmission repeats the same codeword (RV 0); the LLRs add up, so ``k``
  copies over AWGN act like one copy at ``k`` times the SNR (+10·log10 k dB).
* ``ir`` (incremental redundancy): transmission ``t`` sends redundancy version
  ``(0, 2, 3, 1)[t mod 4]`` (the 38.214 RV order), i.e. a further part of the lower-rate mother
  code's circular buffer; the decoder sees the union of the parts (bits not sent yet at LLR 0),
  a code of lower rate than the first transmission's.

The rate matching and the combining in the circular buffer are Sionna's HARQ-IR support
(:class:`~linksim.phy.fec.LDPC` ``rv=``); this module adds only the ACK/NACK loop. Transmission
``t`` draws its channel realisation and noise through ``draw(t, used)`` (the caller seeds them per
transmission index); ``used`` ``[B]`` is each example's airtime before round ``t`` in units of one
whole transmission (the fraction of its codewords sent in each earlier round, summed), so that a
time-varying channel can be sampled when the round starts. The loop simulates the whole frame in every round (the link's grid has a fixed
size), but a codeword that was already acknowledged contributes nothing from that round on and is
not counted as sent: the caller charges airtime for the codewords actually resent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .chains import ChannelState, DigitalChain
from .links import ChannelRealization

__all__ = ["HARQ_MODES", "HarqResult", "rv_sequence", "harq_transmit"]

#: redundancy versions of transmissions 0, 1, 2, ... (repeated cyclically)
HARQ_MODES = {"chase": (0,), "ir": (0, 2, 3, 1)}


def rv_sequence(mode: str, max_tx: int) -> tuple[int, ...]:
    """The redundancy version of each of ``max_tx`` transmissions.

    >>> rv_sequence("ir", 6), rv_sequence("chase", 3)
    ((0, 2, 3, 1, 0, 2), (0, 0, 0))
    """
    if mode not in HARQ_MODES:
        raise ValueError(f"harq mode must be one of {tuple(HARQ_MODES)}; got {mode!r}")
    if max_tx < 1:
        raise ValueError(f"max_tx must be at least 1; got {max_tx}")
    seq = HARQ_MODES[mode]
    return tuple(seq[t % len(seq)] for t in range(max_tx))


@dataclass
class HarqResult:
    """Outcome of :func:`harq_transmit` for ``B`` examples of ``C`` codewords.

    :param bits_hat: ``[B, num_info_bits]`` decoded information bits after the last transmission
    :param crc_ok: ``[B, C]`` bool, CRC of each codeword after its last transmission
    :param first_ok: ``[B, C]`` bool, CRC after the first transmission alone
    :param transmissions: ``[B, C]`` int64, transmissions of each codeword (1..max_tx)
    :param rounds: ``[B]`` int64, transmission rounds of each example (its codewords' maximum)
    :param state: the :class:`~linksim.phy.chains.ChannelState` of the first transmission
    """

    bits_hat: torch.Tensor
    crc_ok: torch.Tensor
    first_ok: torch.Tensor
    transmissions: torch.Tensor
    rounds: torch.Tensor
    state: ChannelState


def harq_transmit(chain: DigitalChain, bits: torch.Tensor, no,
                  draw: Callable[[int], tuple[ChannelRealization, torch.Generator]],
                  mode: str = "chase", max_tx: int = 4) -> HarqResult:
    """Send ``bits`` ``[B, num_info_bits]`` with HARQ until every codeword passes or ``max_tx``.

    :param chain: an LDPC-coded chain with a CRC per codeword
    :param no: float or ``[B]``, linear ``N0`` (the same in every transmission)
    :param draw: ``draw(t, used) -> (realization, noise_generator)`` for transmission ``t`` (0 = first);
        ``used`` ``[B]`` float, airtime of the rounds before ``t`` in whole transmissions
    :param mode: ``chase`` | ``ir`` (module notes)
    :param max_tx: transmissions at most (the first included)
    """
    if chain.ldpc is None or chain.crc is None:
        raise ValueError("HARQ needs an LDPC-coded chain with a CRC per codeword")
    rvs_all = rv_sequence(mode, max_tx)
    batch, c = bits.shape[0], chain.num_codewords
    dev = chain.device
    active = torch.ones(batch, c, dtype=torch.bool, device=dev)
    sent = torch.zeros(batch, c, dtype=torch.long, device=dev)
    ok = torch.zeros(batch, c, dtype=torch.bool, device=dev)
    bits_hat = torch.zeros(batch, c, chain.info_bits_per_codeword, device=dev)
    llrs, rvs, state, first_ok = [], [], None, None
    for t, rv in enumerate(rvs_all):
        if not bool(active.any()):
            break
        realization, noise_gen = draw(t, sent.sum(dim=1).double().cpu() / c)
        llr, st = chain.transmit(bits, realization, no, noise_gen, rv=rv)
        state = st if state is None else state
        # an acknowledged codeword is not sent again: nothing of this round reaches its decoder
        llrs.append(torch.where(active[..., None], llr, torch.zeros_like(llr)))
        rvs.append(rv)
        sent += active.long()
        sel = active.nonzero(as_tuple=True)
        b, good = chain.decode_codewords(torch.stack([x[sel] for x in llrs], dim=1), rvs)
        bits_hat[sel] = b.to(bits_hat.dtype)
        ok[sel] = good
        if first_ok is None:
            first_ok = ok.clone()
        active &= ~ok
    return HarqResult(bits_hat=bits_hat.reshape(batch, chain.num_info_bits), crc_ok=ok, first_ok=first_ok,
                      transmissions=sent, rounds=sent.max(dim=1).values, state=state)
