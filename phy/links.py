"""The channel part of a chain: what happens between unit-power symbols and equalised symbols.

A :class:`Link` owns the channel model, the resource grid (if any), channel estimation and
equalisation. The chains (:mod:`linksim.phy.chains`) put power normalisation and interleaving
(analog) or CRC/LDPC/QAM (digital) around a link. Every link splits *drawing* a channel
(:meth:`Link.generate`) from *applying* it (:meth:`Link.transmit`), so that a receiver can freeze a
channel and re-run the noise-free forward operator (:meth:`Link.noise_free`) as often as it needs.

Shapes: ``B`` examples (images or codeword blocks), ``N`` data symbols per example.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
from torch import nn

# GridError, GridInfo and LinkConfig are torch-free (.grid); links re-exports them for its users
from .grid import SNR_REFERENCES, GridError, GridInfo, LinkConfig  # noqa: F401
from .validation import check_one_of



def instantaneous_noise(no: torch.Tensor, received: torch.Tensor, reference: str) -> torch.Tensor:
    """``N0`` per example for an SNR reference (see :attr:`LinkConfig.snr_reference`).

    :param no: ``[B]`` requested ``N0`` (``1/CSNR`` for unit transmit power)
    :param received: ``[B, ...]`` the noise-free received samples of each example (all of them:
        on OFDM the time-domain waveform with pilots and CP)
    :param reference: ``"average"`` (``no`` unchanged) | ``"instantaneous"``
        (``no · mean|received|²``: the measured received power over ``1/N0``)
    :returns: ``[B]`` real, detached (the noise level is a property of the channel, not of x)
    """
    if check_one_of("snr_reference", reference, SNR_REFERENCES) == "average":
        return no
    power = received.detach().abs().square().flatten(1).mean(-1).to(no.dtype)
    return no * power


@dataclass(frozen=True)
class TransmitTimes:
    """When each example of a batch goes on the air, and which channel process it sees.

    A time-varying link (a TDL with ``speed > 0``) evaluates example ``b``'s channel at
    ``start_s[b]`` plus the times of its OFDM symbols, on the process drawn from a generator seeded
    with ``process_seeds[b]``: examples with equal seeds see one continuous channel at their own
    times. Static links ignore it. The engine sets it for every batch (:func:`transmit_times`):
    ``start_s`` = the messages' ``t_tx_start`` (simulated time), one process per channel draw.

    :param start_s: ``B`` transmission start times [s]
    :param process_seeds: ``B`` seeds of the channel process of each example
    :param airtime_s: how long one whole transmission of an example occupies the channel [s]
        (``None``: not known); a retransmission starts after the rounds before it
        (:meth:`later`)
    """

    start_s: tuple[float, ...]
    process_seeds: tuple[int, ...]
    airtime_s: float | None = None

    def __post_init__(self):
        if len(self.start_s) != len(self.process_seeds):
            raise ValueError(f"start_s and process_seeds must have one entry per example; got "
                             f"{len(self.start_s)} and {len(self.process_seeds)}")

    def select(self, index, delay_s: float = 0.0) -> "TransmitTimes":
        """The examples ``index`` (a sequence of positions), each ``delay_s`` [s] later: what a
        retransmission of some of them sees (same processes, later times)."""
        return TransmitTimes(tuple(self.start_s[i] + delay_s for i in index),
                             tuple(self.process_seeds[i] for i in index), self.airtime_s)

    def later(self, delays_s) -> "TransmitTimes":
        """Every example ``delays_s[b]`` [s] later on its own process (a retransmission round)."""
        delays = [float(d) for d in delays_s]
        if len(delays) != len(self.start_s):
            raise ValueError(f"one delay per example: got {len(delays)} for {len(self.start_s)} examples")
        return TransmitTimes(tuple(t + d for t, d in zip(self.start_s, delays)), self.process_seeds, self.airtime_s)

    def check(self, batch_size: int) -> "TransmitTimes":
        """Itself, after checking it has one entry per example of a ``batch_size`` batch."""
        if len(self.start_s) != batch_size:
            raise ValueError(f"transmit times for {len(self.start_s)} examples, but the batch has {batch_size}")
        return self


_TIMES: contextvars.ContextVar[TransmitTimes | None] = contextvars.ContextVar("linksim_transmit_times",
                                                                               default=None)


@contextlib.contextmanager
def transmit_times(times: TransmitTimes | None) -> Iterator[None]:
    """Within the block, :meth:`Link.generate` without an explicit ``times`` uses ``times``.

    The engine wraps each ``method.channel(...)`` in it, so every method (plug-ins included) draws
    its channel at the messages' transmission times without passing them through its own code.
    """
    token = _TIMES.set(times)
    try:
        yield
    finally:
        _TIMES.reset(token)


def current_transmit_times() -> TransmitTimes | None:
    """The :class:`TransmitTimes` set by the innermost :func:`transmit_times` (``None``: none)."""
    return _TIMES.get()


@dataclass
class ChannelRealization:
    """A frozen channel draw for ``B`` examples.

    :param h: the true channel; layout depends on the link (flat: ``[B, N]`` complex gain per
        symbol; OFDM: ``[B, F, S, M]`` frequency response per resource element, ``F`` frames,
        ``S`` OFDM symbols, ``M`` subcarriers)
    :param taps: multipath links: ``[B, L]`` complex tap gains of the draw (``None`` for flat links)
    :param delays: multipath links: ``[L]`` tap delays [s]
    :param perm: ``[N]`` int64 interleaver permutation drawn with the channel by
        :class:`~linksim.phy.chains.AnalogChain` (``None`` without interleaving)
    :param times: time-varying links: ``[B, T]`` float64 [s], when each of the ``T`` channel
        samples of an example was taken (OFDM: the start of each OFDM symbol, frames back to
        back); ``taps`` are then the gains at ``times[:, 0]`` (``None`` for static links)

    A link of another package that draws more subclasses this dataclass.
    """

    h: torch.Tensor
    taps: torch.Tensor | None = None
    delays: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    times: torch.Tensor | None = None


@dataclass
class LinkOutput:
    """What :meth:`Link.transmit` returns.

    :param y_eq: ``[B, N]`` complex, equalised data symbols (estimates of the sent symbols)
    :param no_eff: ``[B, N]`` float, effective noise variance of each equalised symbol
        (includes channel-estimation error where the estimator reports it)
    :param h_hat: the estimated channel, same layout as :attr:`ChannelRealization.h`
    :param err_var: estimation error variance (same layout as ``h_hat``, or ``None`` when perfect)
    :param weights: the equaliser taps ``w`` (same layout as ``h_hat``) that
        :meth:`Link.noise_free` re-applies, so the *same* equaliser is used
    :param y: the received signal before equalisation (link-specific layout), for blind receivers
    :param no: ``[B]`` the noise variance ``N0`` actually applied (differs from the requested one
        with ``snr_reference: instantaneous``); ``None`` = as requested
    """

    y_eq: torch.Tensor
    no_eff: torch.Tensor
    h_hat: torch.Tensor | None = None
    err_var: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    y: torch.Tensor | None = None
    no: torch.Tensor | None = None


class Link(nn.Module):
    """Base class: unit-power symbols ``[B, N]`` -> channel -> estimation -> equalisation.

    :param cfg: the link configuration
    :param num_symbols: ``N``, data symbols per example
    :param device: torch device; Sionna blocks are built on it (they do not move later)
    """

    #: the channel kinds (``LinkConfig.kind``) this class implements
    kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: LinkConfig, num_symbols: int, device: str | torch.device = "cpu"):
        super().__init__()
        if self.kinds and cfg.kind not in self.kinds:
            raise ValueError(f"{type(self).__name__} handles kind {' or '.join(map(repr, self.kinds))}; "
                             f"got {cfg.kind!r}")
        self.cfg = cfg
        self.num_symbols = int(num_symbols)
        self.device = torch.device(device)

    def grid(self) -> GridInfo:
        """The layout of ``N`` data symbols on the air (flat links: no overhead)."""
        return GridInfo(num_data=self.num_symbols)

    def generate(self, batch_size: int, generator: torch.Generator,
                 times: TransmitTimes | None = None) -> ChannelRealization:
        """Draw ``batch_size`` independent channels (fading, pilots) with ``generator``.

        :param times: when the examples go on the air (default: :func:`current_transmit_times`);
            only time-varying links use it, the others draw from ``generator`` as without it
        """
        raise NotImplementedError

    def transmit(
        self,
        x: torch.Tensor,
        realization: ChannelRealization,
        no: torch.Tensor,
        generator: torch.Generator,
    ) -> LinkOutput:
        """Send ``x`` ``[B, N]`` complex (unit average power per example) over ``realization``.

        :param no: ``[B]`` linear noise variance ``N0``; noise is ``CN(0, N0)`` per complex sample
        :param generator: draws the noise
        """
        raise NotImplementedError

    def noise_free(
        self,
        x: torch.Tensor,
        realization: ChannelRealization,
        out: LinkOutput,
        use_true_channel: bool = False,
    ) -> torch.Tensor:
        """Noise-free, differentiable re-simulation ``A(x)``: ``[B, N]`` complex -> ``[B, N]``.

        The channel is ``out.h_hat`` (or ``realization.h`` with ``use_true_channel``), and the
        equaliser is the one stored in ``out.weights`` (not re-derived), so that with the true
        channel and the transmitted ``x`` the result equals ``out.y_eq`` minus the equalised noise.
        """
        raise NotImplementedError

    # -- the received (un-equalised) domain: what DiffCom's measurement compares --------------
    def received_data(self, out: LinkOutput) -> torch.Tensor:
        """``[B, N]`` complex: the received, *un-equalised* samples on the data positions, in
        on-air order (OFDM: the data REs of ``out.y``; pilots dropped)."""
        raise NotImplementedError

    def data_channel(self, realization: ChannelRealization, out: LinkOutput,
                     use_true_channel: bool = False) -> torch.Tensor:
        """``[B, N]`` complex channel (estimate ``out.h_hat``, or the true one) on the data positions."""
        raise NotImplementedError

    def data_err_var(self, out: LinkOutput) -> torch.Tensor | None:
        """``[B, N]`` channel-estimation error variance on the data positions (``None``: perfect)."""
        return None

    def tx_data(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` what the data positions carry when ``x`` ``[B, N]`` is sent (after any
        transmitter impairment such as clipping); differentiable. Flat links: ``x`` itself."""
        return x
