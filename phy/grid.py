"""Grid geometry of a link: its static description and how data symbols are laid out on the air.

Torch-free on purpose: the scenario validator (``linksim validate``) checks every CBR against the
channel's grid before any work, without importing torch or Sionna. The links
(:mod:`linksim.phy.channels`, :mod:`linksim.phy.ofdm`) use the same functions for their
:meth:`~linksim.phy.links.Link.grid_info`.

>>> ofdm_grid(LinkConfig(kind="ofdm", data_symbols=16, pilot_symbols=1, cp=12), 256).overhead
0.859375
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .validation import check_one_of

__all__ = ["GridError", "GridInfo", "LinkConfig", "SNR_REFERENCES", "ESTIMATORS", "EQUALIZERS",
           "flat_grid", "ofdm_grid"]

SNR_REFERENCES = ("average", "instantaneous")
ESTIMATORS = ("perfect", "ls", "lmmse")
EQUALIZERS = ("zf", "mmse")


class GridError(ValueError):
    """A number of data symbols does not fit the configured resource grid."""


@dataclass(frozen=True)
class LinkConfig:
    """Static description of a link (the engine maps the scenario's ``channel:`` onto it).

    :param kind: the channel kind; this package implements ``awgn`` | ``rayleigh`` (flat block fading)
        (:class:`~linksim.phy.channels.FlatLink`) and ``ofdm`` (exponential-PDP multipath) | ``tdl``
        (3GPP TR 38.901 TDL-A..E) (:class:`~linksim.phy.ofdm.OFDMLink`); each :class:`Link` class
        declares its :attr:`~linksim.phy.links.Link.kinds`
    :param coherence_symbols: rayleigh: symbols per fading block; ``None`` = one coefficient per
        example
    :param paths: ofdm: number of taps ``L`` of the exponential power-delay profile
    :param decay: ofdm: PDP decay, ``p_l ∝ exp(-l/decay)``, normalised so ``Σ p_l = 1``
    :param tdl_model: tdl: one of ``A``..``E``
    :param delay_spread: tdl: RMS delay spread [s]
    :param speed: tdl: receiver speed [m/s]; ``> 0`` makes the taps a Doppler process (maximum
        Doppler ``f_D = speed · carrier_frequency / c``) that varies over the OFDM symbols of a
        message and follows its transmission time (:class:`TransmitTimes`); 0: static
    :param carrier_frequency: tdl: carrier frequency [Hz] (enters through the Doppler only)
    :param subcarriers: ofdm/tdl: FFT size; ``None`` derives it as ``N / data_symbols``
    :param data_symbols: data OFDM symbols per frame
    :param pilot_symbols: pilot OFDM symbols per frame (all subcarriers carry pilots there)
    :param cp: cyclic-prefix length [samples]
    :param subcarrier_spacing: [Hz]
    :param estimator: ``perfect`` | ``ls`` | ``lmmse``
    :param equalizer: ``zf`` | ``mmse``
    :param clip_ratio: amplitude clipping threshold as a multiple of the time-domain RMS
        amplitude (``None`` = no clipping)
    :param interleave: analog chain: random symbol interleaver (a permutation per realization)
    :param snr_reference: what the CSNR ``1/N0`` refers to. ``"average"`` (DESIGN.md §3): the
        average SNR per data RE, ``N0`` as requested. ``"instantaneous"`` (the DiffCom reference
        code): per example, ``N0`` is scaled by the measured power of the noise-free received
        signal of *that* realisation (time domain, pilots and CP included on OFDM), so every
        example sees SNR ``1/N0`` whatever its fading; see :func:`instantaneous_noise`.
    :param link: the :class:`~linksim.phy.links.Link` subclass that carries this config (``None``: the class of this
        package that declares ``kind``, :func:`linksim.phy.chains.link_class`); the engine passes the
        class registered for the channel kind (or its ``"module:Class"`` reference, imported by the
        chains on first use), so a link of another package runs in every chain
    :param options: further settings of such a link class, ``((key, value), ...)`` sorted by key;
        read with :meth:`option`
    """

    kind: str = "awgn"
    coherence_symbols: int | None = None
    paths: int = 8
    decay: float = 4.0
    tdl_model: str = "C"
    delay_spread: float = 100e-9
    speed: float = 0.0
    carrier_frequency: float = 3.5e9
    subcarriers: int | None = None
    data_symbols: int = 16
    pilot_symbols: int = 1
    cp: int = 12
    subcarrier_spacing: float = 15e3
    estimator: str = "lmmse"
    equalizer: str = "mmse"
    clip_ratio: float | None = None
    interleave: bool = True
    snr_reference: str = "average"
    link: Any = None
    options: tuple = ()

    def option(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` in :attr:`options` (``default`` when absent)."""
        return dict(self.options).get(key, default)

    def __post_init__(self):
        check_one_of("estimator", self.estimator, ESTIMATORS)
        check_one_of("equalizer", self.equalizer, EQUALIZERS)
        check_one_of("snr_reference", self.snr_reference, SNR_REFERENCES)


@dataclass(frozen=True)
class GridInfo:
    """How ``num_data`` symbols per example are laid out on the air.

    ``num_data`` counts data symbols only (they define the CBR, DESIGN.md §3); pilots and cyclic
    prefix are reported separately as overhead.

    :param num_data: data symbols per example
    :param num_frames: OFDM frames per example (1 for flat links)
    :param subcarriers: FFT size (0 for flat links)
    :param data_symbols: data OFDM symbols per frame (0 for flat links)
    :param pilot_symbols: pilot OFDM symbols per frame
    :param pilot_res: pilot resource elements per example
    :param cp_samples: cyclic-prefix samples per example
    """

    num_data: int
    num_frames: int = 1
    subcarriers: int = 0
    data_symbols: int = 0
    pilot_symbols: int = 0
    pilot_res: int = 0
    cp_samples: int = 0

    @property
    def channel_uses(self) -> int:
        """Channel uses reported per example: the data symbols ``num_data`` (the CBR numerator,
        DESIGN.md §3), for image methods and phy studies alike; pilots and CP are :attr:`overhead`."""
        return self.num_data

    @property
    def overhead(self) -> float:
        """Extra channel uses (pilots + CP) per data symbol, e.g. 0.1 = 10 % on top of ``num_data``."""
        return (self.pilot_res + self.cp_samples) / self.num_data


def flat_grid(cfg: Any, num_symbols: int) -> GridInfo:
    """Flat links put every symbol on the air as is: no pilots, no cyclic prefix."""
    if num_symbols < 1:
        raise ValueError(f"num_symbols must be positive; got {num_symbols}")
    return GridInfo(num_data=int(num_symbols))


def ofdm_grid(cfg: Any, num_symbols: int) -> GridInfo:
    """Layout of ``num_symbols`` data symbols on OFDM frames; raises :class:`GridError`.

    ``subcarriers = cfg.subcarriers`` or ``N / data_symbols`` (one frame); frames
    ``F = N / (subcarriers · data_symbols)``; pilots ``F · pilot_symbols · subcarriers`` REs;
    cyclic prefix ``F · (data_symbols + pilot_symbols) · cp`` samples.
    """
    n, d, p = int(num_symbols), int(cfg.data_symbols), int(cfg.pilot_symbols)
    if n < 1 or d < 1 or p < 0:
        raise GridError(f"need N >= 1, data_symbols >= 1 and pilot_symbols >= 0; got N={n}, "
                        f"data_symbols={d}, pilot_symbols={p}")
    if cfg.subcarriers is None:
        if n % d:
            raise GridError(f"N={n} data symbols are not a multiple of data_symbols={d}, so no "
                            f"subcarrier count fits; choose N as a multiple of {d} or set subcarriers")
        m = n // d
    else:
        m = int(cfg.subcarriers)
        if m < 1:
            raise GridError(f"subcarriers must be >= 1; got {m}")
        if n % (d * m):
            lo = max(1, n // (d * m)) * d * m
            raise GridError(f"N={n} data symbols do not fill whole frames of {d} x {m} = {d * m} REs; "
                            f"choose N as a multiple of {d * m} (e.g. {lo} or {lo + d * m})")
    if cfg.cp > m:
        raise GridError(f"cyclic prefix cp={cfg.cp} is longer than the FFT size {m}")
    f = n // (d * m)
    return GridInfo(num_data=n, num_frames=f, subcarriers=m, data_symbols=d, pilot_symbols=p,
                    pilot_res=f * p * m, cp_samples=f * (d + p) * int(cfg.cp))
