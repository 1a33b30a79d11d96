"""Arrival processes of the discrete-event core (issue 17 tests): Poisson inter-arrival times have
mean ``1/λ`` and variance ``1/λ²`` and are exponential (theory, fixed seed, stated statistical
tolerances); periodic arrivals are exact, and the transmitter starts each message at its arrival
when the channel is free."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from linksim.des import Message, arrival_times, simulate
from linksim.scenario import TrafficConfig

N = 20_000


def test_poisson_inter_arrival_mean_variance_and_shape():
    rate = 4.0
    gaps = np.diff(arrival_times(TrafficConfig(kind="poisson", rate_hz=rate), N + 1, 11))
    assert len(gaps) == N
    # exponential: std of the sample mean (1/λ)/sqrt(N) = 0.7 %; of the sample variance
    # sqrt(8/N)/λ² = 2 % (fourth central moment 9/λ⁴); tolerances are ~4 standard errors
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.03)
    assert gaps.var(ddof=1) == pytest.approx(1 / rate**2, rel=0.08)
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.01
    # memoryless renewal process: successive gaps uncorrelated (|r| < 4/sqrt(N) = 0.028)
    assert abs(np.corrcoef(gaps[:-1], gaps[1:])[0, 1]) < 4 / np.sqrt(N)


def test_poisson_arrivals_follow_the_seed():
    tr = TrafficConfig(kind="poisson", rate_hz=2.0)
    assert arrival_times(tr, 50, 1) == arrival_times(tr, 50, 1)
    assert arrival_times(tr, 50, 1) != arrival_times(tr, 50, 2)
    assert arrival_times(tr, 50, 1)[0] == 0.0


def test_periodic_arrivals_are_exact():
    interval = 0.1
    t = arrival_times(TrafficConfig(kind="periodic", interval_s=interval), 1000, 0)
    assert t == [i * interval for i in range(1000)]  # exactly i·T, no accumulated rounding
    msgs = [Message(i, i, ti, airtime_s=0.01) for i, ti in enumerate(t[:20])]
    simulate(msgs, lambda batch: ([None] * len(batch), 0.002), batch_all=False)
    assert [m.t_tx_start for m in msgs] == t[:20]  # the channel is free: on air at arrival
    assert [m.t_done for m in msgs] == pytest.approx([ti + 0.012 for ti in t[:20]], abs=1e-12)
