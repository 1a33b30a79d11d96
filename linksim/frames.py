"""Per-frame results of a traffic run (layer L0, docs/INTERNALS.md): age of information and what a
viewer sees within the deadline.

A job's messages are the frames of one stream (a camera: ``traffic: periodic``), in arrival order
(``t_arrival``, ties by message id). The discrete-event core (:mod:`linksim.des`) gives each frame
``t_arrival`` (capture = arrival at the transmitter), ``t_done`` (decoded) and ``deadline_missed``.
A frame is **delivered** at ``t_done`` when its decode produced an image (``outage`` false: not a
CRC failure or source outage, whose row holds the mid-grey fallback); it is **delivered in time**
when, in addition, ``t_done - t_arrival <= deadline_s``.

**Age of information** (``aoi_s``; Kaul, Yates & Gruteser, "Real-time status: how often should one
update?", INFOCOM 2012): the age at time ``t`` is ``Δ(t) = t − U(t)``, where ``U(t)`` is the
capture time of the freshest frame delivered by ``t``. The per-frame column samples it at the
frame's own arrival instant ``a_i``::

    aoi_s[i] = a_i − max{ a_j : frame j delivered, t_done_j <= a_i }

i.e. how old the newest picture the receiver holds is when the camera takes frame ``i`` (a delivery
at exactly ``a_i`` counts). Before any delivery the age is undefined: the cell is empty (NaN) and
summaries skip it. Over a periodic stream the mean of ``aoi_s`` is the time-average age sampled at
the frame clock.

**Quality within the deadline** (``<metric>_in_time``, e.g. ``psnr_in_time``): the frame shown in
frame ``i``'s display slot is frame ``i`` itself when it was delivered in time, else the last
earlier frame (in arrival order) that was delivered in time — the display freezes on it — and the
metric compares what is shown with frame ``i``'s original. Before any frame was delivered in time
the display shows the mid-grey frame (0.5 everywhere, the same fallback as an outage), so
``<metric>_in_time`` is always defined. Without a deadline there is no such column.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["FrameTimes", "age_of_information", "shown_in_time", "frame_columns", "in_time_metrics", "AOI_COLUMN",
           "IN_TIME_SUFFIX", "GREY"]

AOI_COLUMN = "aoi_s"
IN_TIME_SUFFIX = "_in_time"
#: what the display shows before any frame was delivered in time (every pixel, every channel)
GREY = 0.5


def in_time_metrics(names: Sequence[str]) -> list[str]:
    """The metrics of ``names`` that get a ``<metric>_in_time`` column: per-image metrics that compare
    two images alone (not the set metrics FID/KID, not ``uses_side`` ones such as mIoU, whose labels
    belong to frame ``i`` and not to the frame shown)."""
    from linksim.metrics import SET_METRICS
    from linksim.registry import METRICS

    return [n for n in names if n not in SET_METRICS and not getattr(METRICS.get(n), "uses_side", False)]


class FrameTimes:
    """The timeline of one stream, in message order.

    :param t_arrival: ``[n]`` capture / arrival times [s]
    :param t_done: ``[n]`` decode finish times [s]
    :param outage: ``[n]`` true where nothing was decoded (the fallback image)
    """

    def __init__(self, t_arrival: Sequence[float], t_done: Sequence[float], outage: Sequence[bool | None]):
        if not len(t_arrival) == len(t_done) == len(outage):
            raise ValueError("t_arrival, t_done and outage need one entry per frame")
        self.t_arrival = [float(t) for t in t_arrival]
        self.t_done = [float(t) for t in t_done]
        self.outage = [bool(o) for o in outage]

    def order(self) -> list[int]:
        """Frame indices in arrival order (ties: message order)."""
        return sorted(range(len(self.t_arrival)), key=lambda i: (self.t_arrival[i], i))


def age_of_information(frames: FrameTimes) -> list[float]:
    """``aoi_s`` of every frame (message order): the age at its arrival instant (module docstring).

    >>> age_of_information(FrameTimes([0.0, 1.0, 2.0, 3.0], [0.5, 2.5, 5.0, 4.5], [False] * 4))
    [nan, 1.0, 2.0, 2.0]
    """
    delivered = sorted((frames.t_done[j], frames.t_arrival[j]) for j in range(len(frames.t_done))
                       if not frames.outage[j])
    out = []
    for a in frames.t_arrival:
        fresh = [cap for done, cap in delivered if done <= a]
        out.append(a - max(fresh) if fresh else math.nan)
    return out


def shown_in_time(frames: FrameTimes, deadline_s: float) -> list[int | None]:
    """The frame shown in each frame's display slot (message order): itself when delivered in time,
    else the last earlier frame delivered in time, ``None`` before any (the mid-grey frame).

    >>> shown_in_time(FrameTimes([0.0, 0.1, 0.2], [0.05, 0.3, 0.25], [False, False, False]), 0.1)
    [0, 0, 2]
    """
    shown: list[int | None] = [None] * len(frames.t_arrival)
    last = None
    for i in frames.order():
        if not frames.outage[i] and frames.t_done[i] - frames.t_arrival[i] <= deadline_s:
            last = i
        shown[i] = last
    return shown


def frame_columns(traffic, metrics: Sequence[str]) -> list[str]:
    """The per-frame columns a traffic configuration adds to ``results.csv`` (declared, so the store's
    header and the reports' figures come from here): ``aoi_s`` for a stream (``periodic`` /
    ``poisson``), and ``<metric>_in_time`` of each per-image ``metrics`` when a deadline is set.

    >>> from linksim.configs import TrafficConfig
    >>> frame_columns(TrafficConfig(kind="periodic", interval_s=0.1, deadline_s=0.1), ["psnr", "ms_ssim"])
    ['aoi_s', 'psnr_in_time', 'ms_ssim_in_time']
    """
    if traffic.kind == "batch":
        return []
    cols = [AOI_COLUMN]
    if traffic.deadline_s is not None:
        cols += [f"{m}{IN_TIME_SUFFIX}" for m in metrics]
    return cols
