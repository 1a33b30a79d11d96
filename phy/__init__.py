"""linksim.phy: the physical layer (torch + Sionna 2.x); knows nothing about images.

Entry points: :class:`AnalogChain` (continuous symbols, JSCC) and :class:`DigitalChain`
(bits, CRC + 5G LDPC + QAM), both around a :class:`~linksim.phy.links.Link` built by
:func:`build_link` from a :class:`LinkConfig`. Conventions (CSNR, Eb/N0, unit power per image)
are in :mod:`linksim.phy.conventions`.

The names below are imported on first use (``lazy_loader``): importing a torch-free module of the
package (:mod:`linksim.phy.grid`, :mod:`linksim.phy.modulation`, :mod:`linksim.phy.validation`)
then does not import torch and Sionna, which keeps ``linksim validate`` light.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "ber": ["BerResult", "simulate_ber"],
    "chains": ["AnalogChain", "ChannelState", "DigitalChain", "DigitalRx", "build_link", "grid_info"],
    "channels": ["FlatLink", "awgn", "rayleigh_block_fading"],
    "conventions": ["csnr_db_to_ebno_db", "csnr_db_to_no", "ebno_db_to_csnr_db", "ebnodb_to_no", "no_to_csnr_db"],
    "fec": ["CRC", "LDPC"],
    "impairments": ["RandomInterleaver", "clip_amplitude"],
    "grid": ["GridError", "GridInfo", "LinkConfig"],
    "links": ["ChannelRealization", "Link", "LinkOutput"],
    "modulation": ["MODULATIONS", "bits_per_symbol"],
    "mapping": ["QAMDemapper", "QAMMapper"],
})
