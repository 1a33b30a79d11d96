"""The image-method interface the engine drives (DESIGN.md §2).

An *image method* turns images into channel input and back: a :class:`Transmitter` (codec encoder),
the physical-layer chain (``linksim.phy``) and a :class:`Receiver` (codec decoder, JSCC decoder,
diffusion sampler). The engine knows only :class:`ImageMethod`; what a method does inside is its own
business. One :class:`ImageMethod` object is built per sweep point, from its scenario config (a
pydantic model registered next to it in ``linksim/registry.py``) and the :class:`OperatingPoint`::

    images [B,3,H,W] in [0,1]
      -> ImageMethod.encode(images, generator)            -> TxSignal  (x: symbols or bits)
      -> ImageMethod.channel(tx, channel_gen, noise_gen)  -> RxSignal  (y, ChannelState)
      -> ImageMethod.decode(rx, generator)                -> Decoded   (images [B,3,H,W] in [0,1])

The engine times ``decode`` (the receiver's service time in the discrete-event simulation), takes
the airtime of one image from :meth:`ImageMethod.grid` and the OFDM numerology, and computes the
metrics itself. ``channel_gen`` draws the channel realization (fading, pilots); messages inside one
coherence interval get generators seeded alike, so they see the same channel. ``noise_gen`` draws
the noise. Every random draw uses one of the generators handed in.

Adding a method: subclass :class:`ImageMethod` (usually with a :class:`Transmitter` and a
:class:`Receiver`), write its pydantic config (``kind: Literal["my_method"]``, ``name``; its static
checks at an operating point, before any work, are the config's ``check_point(point)``), add one line
to ``linksim.registry.BUILTINS[METHODS]``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from .point import OperatingPoint

__all__ = ["OperatingPoint", "TxSignal", "RxSignal", "AirUse", "Decoded", "Transmitter", "Receiver", "ImageMethod"]


@dataclass
class TxSignal:
    """What a transmitter puts on the channel.

    :param x: ``[B, N]`` complex64 symbols (analog methods) or ``[B, num_bits]`` float bits in
        {0, 1} (digital methods)
    :param payload_bits: ``[B]`` source payload bits per image (digital), ``None`` for analog
    :param outage: ``[B]`` bool, the transmitter could not fit the image into its budget
    :param meta: method-specific side information the transmitter *legitimately* shares
    """

    x: torch.Tensor
    payload_bits: torch.Tensor | None = None
    outage: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class RxSignal:
    """What arrives at the receiver.

    :param y: ``[B, N]`` complex equalised symbols (analog) or the digital chain's output
    :param state: :class:`linksim.phy.chains.ChannelState` (what the receiver may know) or the
        digital chain's receive record
    :param tx_meta: ``TxSignal.meta`` (side information, never the transmitted signal itself)
    """

    y: Any
    state: Any = None
    tx_meta: dict = field(default_factory=dict)
    air: "AirUse | None" = None


@dataclass
class AirUse:
    """How long one message occupied the channel, for a method that may send it more than once (HARQ).

    :param transmissions: ``[B]`` float, airtime in units of one first transmission (the grid of
        :meth:`ImageMethod.grid`): 1 = sent once; a retransmission of ``j`` of ``C`` codewords adds
        ``j / C``
    :param waits_s: ``[B]`` float, time the message holds the channel between its transmissions
        (HARQ feedback delays) [s]

    The engine gives the message ``airtime_s = grid airtime x transmissions`` and holds the
    channel for ``airtime_s + waits_s`` (one stop-and-wait HARQ process).
    """

    transmissions: torch.Tensor
    waits_s: torch.Tensor


@dataclass
class Decoded:
    """A receiver's output.

    :param images: ``[B, 3, H, W]`` float32 in ``[0, 1]``
    :param outage: ``[B]`` bool, decoding failed (e.g. CRC error) and ``images`` is a fallback
    :param payload_bits: ``[B]`` payload bits per image, where the method has a bit stream
    :param nfe: number of network function evaluations (diffusion receivers), else ``None``
    :param extras: further numbers the method wants recorded: ``{column: [B] tensor or list}``
        (one value per image) or ``{column: scalar}`` (the same for every image); the columns
        named in :attr:`ImageMethod.extra_columns` reach ``results.csv``
    """

    images: torch.Tensor
    outage: torch.Tensor | None = None
    payload_bits: torch.Tensor | None = None
    nfe: int | None = None
    extras: dict = field(default_factory=dict)


class Transmitter(ABC):
    """Codec encoder: images -> channel input."""

    @abstractmethod
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TxSignal:
        """:input images: ``[B, 3, H, W]`` float32 in ``[0, 1]``; :output: :class:`TxSignal`."""


class Receiver(ABC):
    """Codec decoder / sampler: received signal -> images."""

    @abstractmethod
    def decode(self, rx: RxSignal, state: Any, generator: torch.Generator | None = None) -> Decoded:
        """:input rx: :class:`RxSignal`; :input state: its channel state; :output: :class:`Decoded`."""


class ImageMethod(ABC):
    """An image-transmission method at one operating point (what the engine drives).

    :param config: the method's validated scenario config (pydantic model with ``name``, ``kind``)
    :param point: the :class:`OperatingPoint`

    Subclasses set :attr:`transmitter` and :attr:`receiver` (or override :meth:`encode` /
    :meth:`decode`) and implement :meth:`channel` and :meth:`grid`.
    """

    transmitter: Transmitter | None = None
    receiver: Receiver | None = None
    #: an image method transmits images: the engine sends every image through it and evaluates the
    #: reconstructions (a phy study declares ``False``); the engine dispatches on this, not on classes
    sends_images: bool = True
    #: per-image columns this method adds to ``results.csv`` from :attr:`Decoded.extras` (the
    #: header is fixed before a run starts, so they are declared here, not discovered)
    extra_columns: tuple[str, ...] = ()
    #: the method sends per-image side data of labelled sources (GESCO's label maps): the engine
    #: then calls ``encode(images, generator, side={"labels": [B,H,W], "instances": [B,H,W]})``
    uses_side: bool = False
    #: the method's channel may send a message several times (HARQ) or adapts to the outcome of the
    #: messages before it (outer-loop link adaptation): the engine then runs ``encode`` and
    #: ``channel`` for one message at a time, in simulated-time order, when the message takes the
    #: channel, and holds the channel as long as :attr:`RxSignal.air` says (an instance may set it
    #: from its config)
    per_message_channel: bool = False

    def __init__(self, config: Any, point: OperatingPoint):
        self.config = config
        self.point = point

    @classmethod
    def run_info(cls, config: Any) -> dict:
        """What ``run.json`` states about this method beyond its scenario keys (e.g. the text prompt
        a diffusion receiver used); the default states nothing. JSON-serialisable."""
        return {}

    @abstractmethod
    def grid(self):
        """:class:`linksim.phy.links.GridInfo` of one image on the air (airtime, overhead)."""

    def encode(self, images: torch.Tensor, generator: torch.Generator) -> TxSignal:
        """``[B, 3, H, W]`` -> :class:`TxSignal` (default: ``self.transmitter.encode``)."""
        return self.transmitter.encode(images, generator)

    @abstractmethod
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        """Send ``tx`` over the physical layer: draw the channel with ``channel_generator``."""

    def decode(self, rx: RxSignal, generator: torch.Generator) -> Decoded:
        """:class:`RxSignal` -> :class:`Decoded` (default: ``self.receiver.decode``)."""
        return self.receiver.decode(rx, rx.state, generator)
