"""Monte-Carlo bit/block error rate of a :class:`~linksim.phy.chains.DigitalChain`.

Like Sionna's ``sim_ber``: run batches until enough errors are counted or a block budget is
spent. A **block** is one codeword (per-codeword BLER, what LDPC curves report); in an uncoded
chain it is one block of ``block_bits`` bits. A block is in error when any of its decoded
information bits differs (the CRC verdict is not used, so undetected errors count too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["BerResult", "simulate_ber"]


@dataclass
class BerResult:
    """Counts of one Monte-Carlo run.

    :param bits: information bits simulated
    :param bit_errors: information bits decoded wrongly
    :param blocks: codewords simulated
    :param block_errors: codewords with at least one wrong information bit
    :param ber: ``bit_errors / bits``
    :param bler: ``block_errors / blocks``
    :param stopped_early: ``True`` if an error target stopped the run before ``max_blocks``
    """

    bits: int
    bit_errors: int
    blocks: int
    block_errors: int
    ber: float
    bler: float
    stopped_early: bool


def simulate_ber(
    chain,
    no,
    generator: torch.Generator,
    batch_size: int,
    max_bit_errors: int | None,
    max_block_errors: int | None,
    max_blocks: int,
    progress: Callable[[BerResult], None] | None = None,
) -> BerResult:
    """Simulate ``chain`` at noise variance ``no`` until an error target or ``max_blocks``.

    Each batch draws ``batch_size`` examples (``batch_size * chain.num_codewords`` codewords) of
    uniform random bits and a fresh channel with ``generator``. The run stops after the batch in
    which ``bit_errors >= max_bit_errors`` or ``block_errors >= max_block_errors`` (a ``None``
    target is ignored), or once ``blocks >= max_blocks`` (whole batches: it may overshoot by less
    than one batch).

    :param chain: a :class:`~linksim.phy.chains.DigitalChain`
    :param no: linear ``N0`` (float), see :func:`linksim.phy.conventions.ebnodb_to_no`
    :param generator: draws bits, channels and noise
    :param progress: called with the running :class:`BerResult` after each batch
    """
    if batch_size < 1 or max_blocks < 1:
        raise ValueError("batch_size and max_blocks must be positive")
    bits = bit_errors = blocks = block_errors = 0
    stopped_early = False
    c, kinfo = chain.num_codewords, chain.info_bits_per_codeword
    result = BerResult(0, 0, 0, 0, 0.0, 0.0, False)
    with torch.no_grad():
        while blocks < max_blocks:
            u = torch.randint(0, 2, (batch_size, chain.num_info_bits), generator=generator,
                              device=generator.device).to(chain.device, torch.float32)
            rx = chain(u, no, generator)
            err = (rx.bits_hat != u).reshape(batch_size, c, kinfo)
            # one sync per batch (not per codeword) to read the counts
            counts = torch.stack([err.sum(), err.any(dim=-1).sum()]).tolist()
            bits += u.numel()
            bit_errors += int(counts[0])
            blocks += batch_size * c
            block_errors += int(counts[1])
            result = BerResult(bits, bit_errors, blocks, block_errors, bit_errors / bits,
                               block_errors / blocks, False)
            if progress is not None:
                progress(result)
            hit_bits = max_bit_errors is not None and bit_errors >= max_bit_errors
            hit_blocks = max_block_errors is not None and block_errors >= max_block_errors
            if hit_bits or hit_blocks:
                stopped_early = blocks < max_blocks
                break
    result.stopped_early = stopped_early
    return result
