"""Settings of the separation baseline and of digital links (``kind: separation``, ``kind: ideal``,
GESCO's ``transmit: digital``), and their static plan: MCS and codeword layout at an operating point.

Torch-free: the scenario validator reads these models and runs :meth:`SeparationSettings.check_point`
without importing torch or Sionna (``linksim validate``); the method itself is
:mod:`linksim.codecs.separation`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from linksim.phy.modulation import NR_TABLE1, nr_mcs_index

from .classical import CODECS, SourceCodec, get_codec
from .mcs import (BITS_PER_SYMBOL, MCS, MCS_MODULATIONS, MCS_TABLE, N_TARGET, CodewordLayout, codeword_layout,
                  select_mcs)
from .point import OperatingPoint

__all__ = ["SeparationSettings", "DigitalLinkSettings", "HarqSettings", "IdealBoundSettings", "link_plan",
           "nr_index", "olla_candidates", "olla_mcs"]


class _CodecSettings(BaseModel):
    """Source-codec part of the settings (pure pydantic; the engine's config models extend it)."""

    model_config = ConfigDict(extra="forbid")

    codec: Literal[tuple(CODECS)] = "hevc"  # the names of linksim.codecs.classical.CODECS
    chroma: Literal["420", "444"] | None = None
    preset: str | None = None

    def codec_options(self) -> dict:
        return {k: v for k, v in (("chroma", self.chroma), ("preset", self.preset)) if v is not None}

    def build_codec(self) -> SourceCodec:
        return get_codec(self.codec, **self.codec_options())

    @model_validator(mode="after")
    def _codec_ok(self):
        self.build_codec()  # unknown option / preset -> ValueError with the codec's message
        return self


class DigitalLinkSettings(BaseModel):
    """MCS and LDPC settings of a digital link (shared by ``separation`` and GESCO's ``digital`` mode).

    :param mcs: ``fixed`` (``modulation``, ``code_rate``) or ``adaptive`` (per-CSNR choice from the
        CQI-like table against ``target_bler``)
    :param modulation: ``qpsk`` | ``16qam`` | ``64qam`` (fixed MCS)
    :param code_rate: LDPC rate ``k/n`` incl. CRC, in [0.2, 0.95] (fixed MCS)
    :param target_bler: adaptive MCS: largest acceptable image error rate
    :param mcs_margin_db: adaptive MCS: back-off [dB] — the MCS is chosen for ``CSNR − margin``
        (the BLER table is for AWGN; fading and channel-estimation losses need a margin, as in a
        real link adaptation loop)
    :param ldpc_iterations: belief-propagation iterations
    :param n_target: nominal LDPC codeword length [bits] (actual: ``[n_target, 2 n_target)``)
    """

    model_config = ConfigDict(extra="forbid")

    mcs: Literal["fixed", "adaptive"] = "fixed"
    modulation: Literal[MCS_MODULATIONS] = "16qam"
    code_rate: float = Field(0.5, ge=0.2, le=0.95)
    target_bler: float = Field(0.1, gt=0.0, lt=1.0)
    mcs_margin_db: float = Field(0.0, ge=0.0)
    ldpc_iterations: PositiveInt = 20
    n_target: int = Field(N_TARGET, ge=128, le=8448)


class HarqSettings(BaseModel):
    """Hybrid ARQ of the separation link (``harq:`` of ``kind: separation``).

    :param mode: ``chase`` (each retransmission repeats the codeword; LLRs add up) or ``ir``
        (incremental redundancy: redundancy versions 0, 2, 3, 1 of the mother code)
    :param max_tx: transmissions of a codeword at most, the first included
    :param feedback_delay_s: time from the end of a transmission to the start of its
        retransmission [s] (decoding, ACK/NACK, scheduling); default 4 ms, a few 1 ms slots at
        15 kHz subcarrier spacing. The message holds the channel meanwhile (one stop-and-wait
        HARQ process)
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["chase", "ir"] = "chase"
    max_tx: int = Field(4, ge=1, le=16)
    feedback_delay_s: float = Field(0.004, ge=0.0)


class SeparationSettings(_CodecSettings, DigitalLinkSettings):
    """Settings of ``kind: separation``: the codec (``codec``, ``chroma``, ``preset``), the digital
    link (:class:`DigitalLinkSettings`), ``crc_failure`` and ``harq``.

    :param codec: ``hevc`` | ``vvc`` | ``jpeg`` | ``jpeg2000`` | ``webp``
    :param chroma: HEVC only: ``"420"`` (default) or ``"444"``
    :param preset: encoder preset (HEVC: x265 presets, default ``veryslow``; VVC: vvenc presets)
    :param crc_failure: ``fallback`` | ``decode_anyway`` (see module notes)
    :param harq: hybrid ARQ per codeword (:class:`HarqSettings`: ``mode``, ``max_tx``,
        ``feedback_delay_s``); absent: every codeword is sent once
    :param mcs: ``fixed`` | ``adaptive`` (per CSNR, from the committed AWGN table) | ``olla``:
        outer-loop link adaptation over the messages of a run (Sionna SYS
        ``OuterLoopLinkAdaptation``): each message's 38.214 table-1 MCS comes from the last
        effective-SINR report minus an offset that rises by ``olla_step_db`` on a NACK of the
        first transmission and falls by ``olla_step_db·t/(1−t)`` on an ACK (``t = target_bler``)
    :param olla_step_db: the OLLA offset step on a NACK [dB]
    :param phy: ``bit_true`` (LDPC belief propagation on the LLRs) | ``abstract``: each
        codeword's error is drawn from Sionna SYS's 5G BLER tables at its EESM effective SINR
        (``PHYAbstraction``; system-level speed; the MCS must be a 38.214 table-1 entry)
    """

    crc_failure: Literal["fallback", "decode_anyway"] = "fallback"
    harq: HarqSettings | None = None
    mcs: Literal["fixed", "adaptive", "olla"] = "fixed"
    olla_step_db: float = Field(1.0, gt=0.0)
    phy: Literal["bit_true", "abstract"] = "bit_true"

    @property
    def ldpc_in_service(self) -> bool:
        """True when the LDPC decoding is part of the receiver's service time (the timed decode).

        False with ``harq`` (each round is decoded inside the ACK/NACK loop, before its feedback:
        part of the round trip, ``feedback_delay_s``) and with ``phy: abstract`` (no decoding, a
        table lookup): the receiver then only decodes the source. Device profiles select their
        entry with it (``when: {ldpc_in_service: false}``, :mod:`linksim.timing`)."""
        return self.harq is None and self.phy == "bit_true"

    def check_point(self, point: OperatingPoint) -> None:
        """Static check at ``point`` (the validator's, before any work): CSNR, CBR and an image
        shape are given, the codewords fit the CBR, and the whole budget ``N = ρ·3HW`` (codewords
        padded with filler) fits the link's grid. ``ValueError`` (one line) otherwise."""
        if point.csnr_db is None or point.cbr is None or point.image_shape is None:
            raise ValueError("separation needs csnr_db and cbr sweep axes and a data: section")
        link_plan(self, point)
        point.grid_info()

    @model_validator(mode="after")
    def _phy_ok(self):
        if self.phy == "abstract" and self.crc_failure == "decode_anyway":
            raise ValueError("phy: abstract draws codeword errors from BLER tables and has no erroneous bits "
                             "to decode; use crc_failure: fallback")
        if self.phy == "abstract" and self.harq is not None and self.harq.mode == "ir":
            raise ValueError("phy: abstract models chase combining only (the BLER tables are for one "
                             "redundancy version); use harq.mode: chase or phy: bit_true")
        return self


class IdealBoundSettings(_CodecSettings):
    """Settings of ``kind: ideal`` (the capacity-achieving separation bound): the codec only."""

    def check_point(self, point: OperatingPoint) -> None:
        """CSNR, CBR and an image shape are given and ``N = ρ·3HW`` is an integer."""
        if point.csnr_db is None or point.cbr is None or point.image_shape is None:
            raise ValueError("ideal needs csnr_db and cbr sweep axes and a data: section")
        _ = point.num_symbols


# ----------------------------------------------------------------------------- static plan
_NR_MODULATIONS = {BITS_PER_SYMBOL[m]: m for m in MCS_MODULATIONS}


def nr_index(mcs: MCS, strict: bool = True) -> int | None:
    """The 38.214 table-1 index of ``mcs`` (the tables of ``phy: abstract`` and OLLA are indexed so)."""
    i = nr_mcs_index(mcs.bits_per_symbol, mcs.rate1024)
    if i is None and strict:
        rates = ", ".join(str(r) for b, r in (NR_TABLE1[j] for j in NR_TABLE1) if b == mcs.bits_per_symbol)
        raise ValueError(f"phy: abstract needs an MCS of 38.214 table 1; {mcs.modulation} rates x 1024 there: "
                         f"{rates}; got {mcs.rate1024} (code_rate {mcs.code_rate:.4f})")
    return i


def olla_candidates(num_symbols: int, n_target: int) -> list[tuple[MCS, CodewordLayout]]:
    """38.214 table-1 MCSs (by index) whose codewords fit ``num_symbols``, with their layouts."""
    out = []
    for i in sorted(NR_TABLE1):
        bps, r = NR_TABLE1[i]
        if bps not in _NR_MODULATIONS:
            continue
        mcs = MCS(_NR_MODULATIONS[bps], r)
        try:
            out.append((mcs, codeword_layout(num_symbols, bps, mcs.code_rate, n_target)))
        except ValueError:
            continue
    if not out:
        raise ValueError(f"mcs: olla: no 38.214 table-1 MCS fits {num_symbols} symbols")
    return out


def olla_mcs(index: int, num_symbols: int, n_target: int) -> MCS:
    """The MCS of table-1 ``index``, or the nearest lower one whose codewords fit (else the lowest)."""
    cands = olla_candidates(num_symbols, n_target)
    fit = [m for m, _ in cands if nr_mcs_index(m.bits_per_symbol, m.rate1024) <= index]
    return fit[-1] if fit else cands[0][0]


def link_plan(config, point: OperatingPoint) -> tuple[MCS, CodewordLayout]:
    """The MCS and codeword layout at ``point`` (static: no codec, no chain); ``mcs: olla``:
    the most robust 38.214 table-1 MCS whose codewords fit (the loop starts there)."""
    n_sym = point.num_symbols
    abstract = getattr(config, "phy", "bit_true") == "abstract"
    if config.mcs == "olla":
        return olla_candidates(n_sym, config.n_target)[0]
    if config.mcs == "adaptive":
        if point.csnr_db is None:
            raise ValueError("mcs: adaptive needs a csnr_db sweep axis")
        cands = tuple(m for m in MCS_TABLE if nr_index(m, strict=False) is not None) if abstract else MCS_TABLE
        mcs = select_mcs(point.csnr_db - config.mcs_margin_db, n_sym, config.target_bler, candidates=cands,
                         n_target=config.n_target)
        mcs = mcs if mcs is not None else cands[0]
    else:
        mcs = MCS(config.modulation, round(config.code_rate * 1024))
        if abstract:
            nr_index(mcs)  # phy: abstract has tables for 38.214 table-1 entries only
    rate = config.code_rate if config.mcs == "fixed" else mcs.code_rate
    return mcs, codeword_layout(n_sym, BITS_PER_SYMBOL[mcs.modulation], rate, config.n_target)
