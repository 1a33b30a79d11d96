"""linksim.phy: the physical layer (torch + Sionna 2.x); knows nothing about images.

Entry points: :class:`AnalogChain` (continuous symbols, JSCC) and :class:`DigitalChain`
(bits, CRC + 5G LDPC + QAM), both around a :class:`~linksim.phy.links.Link` built by
:func:`build_link` from a :class:`LinkConfig`. Conventions (CSNR, Eb/N0, unit power per image)
are in :mod:`linksim.phy.conventions`.
"""

from .ber import BerResult, simulate_ber
from .chains import AnalogChain, ChannelState, DigitalChain, DigitalRx, build_link, grid_info
from .channels import FlatLink, awgn, rayleigh_block_fading
from .conventions import (
    csnr_db_to_ebno_db,
    csnr_db_to_no,
    ebno_db_to_csnr_db,
    ebnodb_to_no,
    no_to_csnr_db,
)
from .fec import CRC, LDPC
from .impairments import RandomInterleaver, clip_amplitude
from .links import ChannelRealization, GridError, GridInfo, Link, LinkConfig, LinkOutput
from .mapping import MODULATIONS, QAMDemapper, QAMMapper, bits_per_symbol

__all__ = [
    "AnalogChain", "BerResult", "CRC", "ChannelRealization", "ChannelState", "DigitalChain",
    "DigitalRx", "FlatLink", "GridError", "GridInfo", "LDPC", "Link", "LinkConfig", "LinkOutput",
    "MODULATIONS", "QAMDemapper", "QAMMapper", "RandomInterleaver", "awgn", "bits_per_symbol",
    "build_link", "clip_amplitude", "csnr_db_to_ebno_db", "csnr_db_to_no", "ebno_db_to_csnr_db",
    "ebnodb_to_no", "grid_info", "no_to_csnr_db", "rayleigh_block_fading", "simulate_ber",
]
