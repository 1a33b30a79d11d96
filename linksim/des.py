"""The discrete-event core (DESIGN.md §6), on SimPy (layer L0, docs/INTERNALS.md).

One job = one method at one sweep point (run by :func:`linksim.engine.run_job`). Its messages (images, or for phy studies one block of
Monte-Carlo work) flow through three SimPy processes::

    source --(t_arrival, traffic model)--> transmitter --(channel busy for the airtime)-->
        receiver queue --(server; service time = modelled (or measured) decode time)--> done (t_done)

* **source**: emits message ``i`` at ``t_arrival[i]`` (``batch``: all at 0; ``periodic``; ``poisson``).
* **transmitter**: the channel is a ``simpy.Resource`` of capacity 1; a message holds it for its
  airtime (:func:`airtime_s`: whole OFDM slots, symbol duration including the cyclic prefix).
  With a ``transmit`` callback (HARQ, link adaptation) the message's physical layer runs when it
  takes the channel, and the callback says how long it holds it: its transmissions plus the
  feedback waits between them (one stop-and-wait HARQ process: the next message waits).
  The channel realization a message sees is indexed by its coherence interval
  ``floor(t_tx_start / coherence_time_s)`` (per message when no coherence time is given). A moving
  channel (TDL with ``speed``) is instead one continuous Doppler process per channel draw, sampled
  at ``t_tx_start`` (:class:`linksim.phy.links.TransmitTimes`); its interval index uses
  ``T_c = 0.423 / f_D``.
* **receiver**: a server taking up to ``max_batch`` waiting messages (``batch`` traffic: all of
  them, a plain Monte-Carlo batch); its service time is a model of the decode's duration
  (``service_time``; :mod:`linksim.timing`, deterministic) or its measured wall-clock time.

Every message carries its timestamps, so latency, queueing delay and deadline misses are results
columns like any metric. The engine does not know what a method does: :func:`simulate` takes a
``serve(batch) -> (results, seconds)`` callable; :func:`linksim.engine.run_job` builds it for image methods
(:class:`linksim.codecs.base.ImageMethod`) and phy studies (:class:`linksim.studies.Study`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import simpy

__all__ = ["Message", "arrival_times", "airtime_s", "simulate"]


@dataclass
class Message:
    """One message and its timestamps [s, simulated time].

    :param id: position in the source's order
    :param payload: what the serve callable needs (an image index, a work item)
    :param t_arrival: when the source emits it
    :param airtime_s: how long it occupies the channel
    :param deadline_s: latency budget (``None``: none)
    """

    id: int
    payload: Any
    t_arrival: float
    airtime_s: float = 0.0
    deadline_s: float | None = None
    t_tx_start: float = math.nan
    t_tx_end: float = math.nan
    t_rx_start: float = math.nan
    t_done: float = math.nan
    channel_block: int = 0
    result: Any = None

    @property
    def latency_s(self) -> float:
        """``t_done - t_arrival``."""
        return self.t_done - self.t_arrival

    @property
    def queue_s(self) -> float:
        """Time spent waiting: for the channel plus for the receiver."""
        return (self.t_tx_start - self.t_arrival) + (self.t_rx_start - self.t_tx_end)

    @property
    def deadline_missed(self) -> bool | None:
        """``latency_s > deadline_s`` (``None`` without a deadline)."""
        return None if self.deadline_s is None else bool(self.latency_s > self.deadline_s)


def arrival_times(traffic, num: int, seed: int) -> list[float]:
    """Arrival times [s] of ``num`` messages under the traffic model.

    :param traffic: :class:`linksim.scenario.TrafficConfig` (``kind``, ``interval_s``, ``rate_hz``)
    :param seed: seeds the Poisson process
    :output: non-decreasing list, first arrival at 0 (``batch``: all 0)
    """
    if traffic.kind == "batch":
        return [0.0] * num
    if traffic.kind == "periodic":
        return [i * traffic.interval_s for i in range(num)]
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(num):
        out.append(t)
        t += rng.expovariate(traffic.rate_hz)
    return out


def airtime_s(grid, channel, numerology) -> float:
    """Airtime [s] of one message laid out as ``grid``.

    OFDM (``grid.subcarriers > 0``): ``num_frames · (data + pilot symbols)`` OFDM symbols, each
    ``(M + cp) / (M · Δf)`` long, rounded up to whole slots of ``symbols_per_slot`` symbols.
    Flat channels: ``num_data / symbol_rate_hz`` (single carrier, no pilots).

    :param grid: :class:`linksim.phy.links.GridInfo`
    :param channel: the point's channel config (``subcarrier_spacing`` [Hz], ``cp`` for OFDM)
    :param numerology: :class:`linksim.scenario.NumerologyConfig`
    """
    if getattr(grid, "subcarriers", 0):
        m = grid.subcarriers
        cp = grid.cp_samples // max(grid.num_frames * (grid.data_symbols + grid.pilot_symbols), 1)
        t_sym = (m + cp) / (m * channel.subcarrier_spacing)
        symbols = grid.num_frames * (grid.data_symbols + grid.pilot_symbols)
        slots = math.ceil(symbols / numerology.symbols_per_slot)
        return slots * numerology.symbols_per_slot * t_sym
    return grid.num_data / numerology.symbol_rate_hz


def simulate(
    messages: Sequence[Message],
    serve: Callable[[list[Message]], tuple[list[Any], float]],
    batch_all: bool = True,
    max_batch: int = 1,
    service_time: Callable[[list[Message]], float] | None = None,
    coherence_time_s: float | None = None,
    transmit: Callable[[Message], float | None] | None = None,
) -> list[Message]:
    """Run the source -> transmitter -> receiver event simulation; fills the messages' timestamps.

    :param messages: with ``t_arrival`` and ``airtime_s`` set
    :param serve: ``serve(batch) -> (results, seconds)``: does the real work for a batch of messages
        (in the order given), returns one result per message and the measured decode time [s]
    :param batch_all: the receiver waits for all messages and serves them as one batch
        (Monte-Carlo); otherwise it serves up to ``max_batch`` waiting messages at a time
    :param service_time: ``service_time(batch) -> seconds``: a model of the service time [s] of a
        batch, called after ``serve`` (each message's ``result`` is set); default: the measured
        seconds (:mod:`linksim.timing` gives the model of ``receiver_time: model``)
    :param coherence_time_s: channel block length; ``None`` gives every message its own block
    :param transmit: ``transmit(m) -> seconds | None``, called when ``m`` takes the channel (its
        ``t_tx_start`` and ``channel_block`` set), in simulated-time order: the seconds ``m`` holds
        the channel (``None``: ``m.airtime_s``); it may update ``m.airtime_s`` (time on the air
        alone, without the waits)
    :output: the same messages, with ``t_tx_start, t_tx_end, t_rx_start, t_done, channel_block,
        result`` set
    """
    env = simpy.Environment()
    air = simpy.Resource(env, capacity=1)
    queue = simpy.Store(env)
    msgs = sorted(messages, key=lambda m: (m.t_arrival, m.id))
    total = len(msgs)

    def transmitter(m: Message):
        with air.request() as req:
            yield req
            m.t_tx_start = env.now
            m.channel_block = int(env.now // coherence_time_s) if coherence_time_s else m.id
            hold = transmit(m) if transmit is not None else None
            yield env.timeout(m.airtime_s if hold is None else hold)
            m.t_tx_end = env.now
        yield queue.put(m)

    def source():
        for m in msgs:
            if m.t_arrival > env.now:
                yield env.timeout(m.t_arrival - env.now)
            env.process(transmitter(m))

    def receiver():
        served = 0
        while served < total:
            batch = [(yield queue.get())]
            limit = total - served if batch_all else max_batch
            while len(batch) < limit and (batch_all or queue.items):
                batch.append((yield queue.get()))
            for m in batch:
                m.t_rx_start = env.now
            results, seconds = serve(batch)
            for m, r in zip(batch, results, strict=True):
                m.result = r  # the service-time model reads what the decode did (its NFE)
            yield env.timeout(service_time(batch) if service_time is not None else seconds)
            for m in batch:
                m.t_done = env.now
            served += len(batch)

    env.process(source())
    env.process(receiver())
    env.run()
    return list(messages)
