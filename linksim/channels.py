"""The scenario's ``channel:`` section: one pydantic config model per channel kind.

Each model holds exactly the :class:`linksim.phy.links.LinkConfig` fields that matter for its kind
(unknown keys are errors) and maps onto a ``LinkConfig`` with :meth:`ChannelConfig.link_config`.
The models are registered in :data:`linksim.registry.CHANNELS` beside the :class:`linksim.phy.links.Link`
class of their kind; the scenario picks one by ``kind``, and ``link_config()`` hands that class to the
chains (``LinkConfig.link``), so a channel kind is built from its registry entry alone — a plug-in's
too. A plug-in's own settings (keys that are not ``LinkConfig`` fields) travel as ``LinkConfig.options``.

A model may declare its grid geometry (:attr:`ChannelConfig.layout`, a torch-free function of
:mod:`linksim.phy.grid`), so that the validator checks a CBR against the grid without importing the
link class (torch, Sionna); without one, :meth:`ChannelConfig.grid_info` asks the link class.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from linksim.phy.grid import GridInfo, LinkConfig, flat_grid, ofdm_grid
from linksim.registry import CHANNELS

__all__ = ["ChannelConfig", "AWGNConfig", "RayleighConfig", "OFDMConfig", "TDLConfig"]


class ChannelConfig(BaseModel):
    """Base of the channel config models (strict: unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    draws: PositiveInt = Field(
        1, description="channel realisations (and noise draws) per image and point; rows carry a draw index")

    #: keys of the section that are the engine's, not the link's
    ENGINE_KEYS: ClassVar[tuple[str, ...]] = ("draws",)
    #: the kind's grid geometry ``(config, num_symbols) -> GridInfo`` (torch-free), or ``None``: the
    #: link class's own ``grid_info`` / ``grid()`` (imports it)
    layout: ClassVar[Callable[[Any, int], GridInfo] | None] = None

    def link_config(self) -> LinkConfig:
        """The :class:`linksim.phy.links.LinkConfig` this section describes, with the link class
        registered for its kind (``LinkConfig.link``; a ``"module:Class"`` reference until the chains
        import it) and its non-``LinkConfig`` keys as ``options``."""
        from dataclasses import fields

        values = self.model_dump(exclude=set(self.ENGINE_KEYS))
        known = {f.name for f in fields(LinkConfig)}
        options = tuple(sorted((k, v) for k, v in values.items() if k not in known))
        return LinkConfig(**{k: v for k, v in values.items() if k in known}, link=CHANNELS.entry(self.kind).cls,
                          options=options)

    def grid_info(self, num_symbols: int) -> GridInfo:
        """How ``num_symbols`` data symbols per example lie on this channel's grid (overhead included);
        :class:`linksim.phy.grid.GridError` (a ``ValueError``) when they do not fit."""
        layout = type(self).layout
        if layout is not None:
            return layout(self, int(num_symbols))
        from linksim.phy.chains import grid_info  # the link class decides (a plug-in without a layout)

        return grid_info(self.link_config(), int(num_symbols))

    def label(self) -> str:
        """Short label for tables and legends, e.g. ``ofdm/lmmse``."""
        return self.kind

    def coherence_time_s(self) -> float | None:
        """Coherence time [s] the channel's own motion implies (``None``: static, it never changes
        by itself; ``numerology.coherence_time_s`` then sets how often it is redrawn)."""
        return None


class _Clip(BaseModel):
    clip_ratio: PositiveFloat | None = Field(None, description="amplitude clipping at clip_ratio x RMS")
    interleave: bool = Field(True, description="analog chain: random symbol interleaver")
    snr_reference: Literal["average", "instantaneous"] = Field(
        "average", description="CSNR = average SNR per data RE (average) or, per realisation, the measured "
        "received power (pilots and CP included) over N0 (instantaneous, the DiffCom reference code)")


class AWGNConfig(ChannelConfig, _Clip):
    """``kind: awgn`` — complex AWGN, no fading."""

    kind: Literal["awgn"] = "awgn"
    layout: ClassVar = flat_grid


class RayleighConfig(ChannelConfig, _Clip):
    """``kind: rayleigh`` — flat Rayleigh block fading with perfect CSI at the receiver."""

    kind: Literal["rayleigh"] = "rayleigh"
    layout: ClassVar = flat_grid
    coherence_symbols: PositiveInt | None = Field(
        None, description="symbols per fading block (None: one coefficient per example)"
    )


class _Grid(BaseModel):
    subcarriers: PositiveInt | None = Field(None, description="FFT size (None: N / data_symbols)")
    data_symbols: PositiveInt = Field(16, description="data OFDM symbols per frame")
    pilot_symbols: NonNegativeInt = Field(
        1, description="pilot OFDM symbols per frame (0: no channel estimate; only methods that need none)")
    cp: int = Field(12, ge=0, description="cyclic prefix [samples]")
    subcarrier_spacing: PositiveFloat = Field(15e3, description="[Hz]")
    estimator: Literal["perfect", "ls", "lmmse"] = "lmmse"
    equalizer: Literal["zf", "mmse"] = "mmse"


class OFDMConfig(ChannelConfig, _Grid, _Clip):
    """``kind: ofdm`` — OFDM over an exponential power-delay profile ``p_l ∝ exp(-l/decay)``."""

    kind: Literal["ofdm"] = "ofdm"
    layout: ClassVar = ofdm_grid
    paths: PositiveInt = Field(8, description="taps L of the power-delay profile")
    decay: PositiveFloat = Field(4.0, description="p_l ∝ exp(-l/decay)")

    def label(self) -> str:
        return f"{self.kind}/{self.estimator}"


class TDLConfig(ChannelConfig, _Grid, _Clip):
    """``kind: tdl`` — OFDM over a 3GPP TR 38.901 tapped-delay-line model."""

    kind: Literal["tdl"] = "tdl"
    layout: ClassVar = ofdm_grid
    tdl_model: Literal["A", "B", "C", "D", "E"] = "C"
    delay_spread: PositiveFloat = Field(100e-9, description="RMS delay spread [s]")
    speed: NonNegativeFloat = Field(
        0.0, description="receiver speed [m/s] (0: static). > 0: Sionna's sum-of-sinusoids Doppler process, "
        "f_D = speed x carrier_frequency / c, varying over the OFDM symbols of a message and sampled at its "
        "transmission time (one process per channel draw); coherence time 0.423 / f_D")
    carrier_frequency: PositiveFloat = Field(3.5e9, description="[Hz]; enters through the Doppler shift only")

    def coherence_time_s(self) -> float | None:
        from linksim.phy.multipath import coherence_time_s

        return coherence_time_s(self.speed, self.carrier_frequency)

    def label(self) -> str:
        return f"{self.kind}-{self.tdl_model}/{self.estimator}"
