"""Modulation names and their bits per symbol: the one table of them.

Torch-free (the scenario validator and the MCS tables read it without importing torch); the
mappers are :mod:`linksim.phy.mapping`.
"""

from __future__ import annotations

__all__ = ["MODULATIONS", "bits_per_symbol", "NR_TABLE1", "nr_mcs_index"]

#: modulation name -> bits per complex symbol
MODULATIONS = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}


def bits_per_symbol(modulation: str | int) -> int:
    """Bits per symbol of a modulation name (``bpsk, qpsk, 16qam, 64qam, 256qam``) or a count.

    >>> bits_per_symbol("16qam")
    4
    """
    if isinstance(modulation, int) and not isinstance(modulation, bool):
        if modulation not in MODULATIONS.values():
            raise ValueError(f"bits per symbol must be one of {sorted(MODULATIONS.values())}; got {modulation}")
        return modulation
    key = str(modulation).lower().replace("-", "")
    if key not in MODULATIONS:
        raise ValueError(f"modulation must be one of {tuple(MODULATIONS)}; got {modulation!r}")
    return MODULATIONS[key]


#: 3GPP TS 38.214 Table 5.1.3.1-1 (MCS index table 1, PDSCH): ``index -> (bits per symbol, rate x 1024)``,
#: indices 3..28 (0..2 have rates below 1/5, which Sionna's 5G LDPC rate matching cannot realise and
#: its BLER tables do not cover). Written out so that the validator needs no Sionna; a test checks
#: it against Sionna's ``MCSDecoderNR``.
NR_TABLE1: dict[int, tuple[int, int]] = {
    3: (2, 251), 4: (2, 308), 5: (2, 379), 6: (2, 449), 7: (2, 526), 8: (2, 602), 9: (2, 679),
    10: (4, 340), 11: (4, 378), 12: (4, 434), 13: (4, 490), 14: (4, 553), 15: (4, 616), 16: (4, 658),
    17: (6, 438), 18: (6, 466), 19: (6, 517), 20: (6, 567), 21: (6, 616), 22: (6, 666), 23: (6, 719),
    24: (6, 772), 25: (6, 822), 26: (6, 873), 27: (6, 910), 28: (6, 948),
}


def nr_mcs_index(bits_per_symbol: int, rate1024: int) -> int | None:
    """The 38.214 table-1 index of (modulation, rate x 1024), or ``None`` if the table has no such entry.

    >>> nr_mcs_index(4, 490), nr_mcs_index(2, 205)
    (13, None)
    """
    return next((i for i, v in NR_TABLE1.items() if v == (bits_per_symbol, rate1024)), None)
