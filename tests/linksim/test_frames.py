"""Per-frame results of traffic runs (issue 17 item 2): age of information and quality within the deadline.

The pure functions are checked on a timeline built by hand (every expected number written out); the
engine's columns on a run whose timeline follows in closed form from a user's device profile, with
the quality of the frame shown computed here with numpy from the original images.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import yaml

from linksim.configs import TrafficConfig
from linksim.frames import FrameTimes, age_of_information, frame_columns, shown_in_time
from linksim.runner import run_scenario
from linksim.scenario import scenario_from_dict

NAN = float("nan")


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-12), (a, b)


class TestHandBuiltTimeline:
    """Frames captured every 100 ms, deadline 100 ms:

    ======  =========  ======  =======  ========================================
    frame   t_arrival  t_done  outage   latency / in time
    ======  =========  ======  =======  ========================================
    0       0.0        0.25    no       0.25 missed
    1       0.1        0.17    no       0.07 in time
    2       0.2        0.28    yes      0.08 (nothing decoded: not delivered)
    3       0.3        0.33    no       0.03 in time
    4       0.4        0.75    no       0.35 missed
    5       0.5        0.52    no       0.02 in time
    ======  =========  ======  =======  ========================================
    """

    T = FrameTimes([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.25, 0.17, 0.28, 0.33, 0.75, 0.52],
                   [False, False, True, False, False, False])

    def test_age_of_information_at_each_arrival(self):
        # at 0.0 and 0.1 nothing has been delivered; at 0.2 frame 1 (captured 0.1, done 0.17) is the
        # freshest; at 0.3 frames 0 and 1 are in (freshest 0.1; frame 2 was an outage); at 0.4 frame 3
        # (0.3); at 0.5 still frame 3 (frame 4 is late)
        _same(age_of_information(self.T), [NAN, NAN, 0.2 - 0.1, 0.3 - 0.1, 0.4 - 0.3, 0.5 - 0.3])

    def test_shown_frame_freezes_on_the_last_in_time(self):
        assert shown_in_time(self.T, 0.1) == [None, 1, 1, 3, 3, 5]

    def test_a_longer_deadline_keeps_more_frames(self):
        assert shown_in_time(self.T, 0.3) == [0, 1, 1, 3, 3, 5]
        assert shown_in_time(self.T, 0.35) == [0, 1, 1, 3, 4, 5]

    def test_arrival_order_not_message_order(self):
        t = FrameTimes([0.2, 0.0, 0.1], [0.25, 0.05, 0.4], [False, False, False])
        assert shown_in_time(t, 0.1) == [0, 1, 1]
        _same(age_of_information(t), [0.2 - 0.0, NAN, 0.1 - 0.0])

    def test_declared_columns(self):
        periodic = dict(kind="periodic", interval_s=0.1)
        assert frame_columns(TrafficConfig(), ["psnr"]) == []
        assert frame_columns(TrafficConfig(**periodic), ["psnr"]) == ["aoi_s"]
        assert frame_columns(TrafficConfig(**periodic, deadline_s=0.1), ["psnr", "ms_ssim"]) == [
            "aoi_s", "psnr_in_time", "ms_ssim_in_time"]


def _psnr(x, y):
    return 10 * np.log10(1.0 / np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))


def _frame_rows(tmp_path, service_s: float, frames: int, deadline_s: float) -> list[dict]:
    """Rows of a run of ``frames`` 16x16 frames every 0.1 s through the fake identity method at
    60 dB, each decode ``service_s`` long (a user's device profile), with ``deadline_s``."""
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"name": "p", "status": "measured", "device": "test", "source": "test",
                                    "entries": [{"kind": "fake_image", "size": 16, "s_per_image": service_s}]}))
    raw = {"name": "fr", "seed": 2, "device": "cpu", "channel": {"kind": "awgn"},
           "data": {"source": "embedded", "size": 16, "limit": frames}, "sweep": {"csnr_db": [60], "cbr": [1]},
           "traffic": {"kind": "periodic", "interval_s": 0.1, "deadline_s": deadline_s}, "device_profile": str(prof),
           "methods": [{"name": "f", "kind": "fake_image"}], "metrics": ["psnr"]}
    run_scenario(scenario_from_dict(raw), output=tmp_path / "out")
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_engine_columns_follow_the_timeline(fake_methods, tmp_path):
    """Every decode lasts 0.15 s (a user profile), frames come every 0.1 s, deadline 0.2 s: the queue
    grows by 0.05 s per frame, so frame k finishes at ε + 0.15 (k + 1) with latency ε + 0.15 + 0.05 k
    (ε = airtime): frame 0 is in time, every later one misses and is shown as frame 0. At 60 dB the
    reconstruction equals the original within 1e-3, so psnr_in_time of frame k is PSNR(original 0,
    original k) computed here."""
    from linksim.data import load_images

    rows = _frame_rows(tmp_path, 0.15, 5, 0.2)
    eps = 16 * 16 * 3 / 1.0e6
    originals = load_images("embedded", size=16, limit=5).images.numpy()
    for k, r in enumerate(rows):
        assert float(r["t_arrival"]) == pytest.approx(0.1 * k)
        assert float(r["t_done"]) == pytest.approx(eps + 0.15 * (k + 1))
        assert r["deadline_missed"] == str(k > 0)
        # freshest delivery by 0.1 k: the largest j with eps + 0.15 (j + 1) <= 0.1 k
        done = [j for j in range(5) if eps + 0.15 * (j + 1) <= 0.1 * k]
        if done:
            assert float(r["aoi_s"]) == pytest.approx(0.1 * k - 0.1 * max(done))
        else:
            assert math.isnan(float(r["aoi_s"]))
        if k == 0:
            assert float(r["psnr_in_time"]) == float(r["psnr"])
        else:
            assert float(r["psnr_in_time"]) == pytest.approx(_psnr(originals[0], originals[k]), abs=0.05)
            assert float(r["psnr_in_time"]) < float(r["psnr"]) - 10  # a stale frame is far worse


def test_before_any_delivery_the_display_is_grey(fake_methods, tmp_path):
    """A deadline no frame meets: every frame's in-time quality is the mid-grey frame's."""
    from linksim.data import load_images

    rows = _frame_rows(tmp_path, 0.5, 3, 0.1)
    originals = load_images("embedded", size=16, limit=3).images.numpy()
    for k, r in enumerate(rows):
        assert float(r["psnr_in_time"]) == pytest.approx(_psnr(np.full_like(originals[k], 0.5), originals[k]),
                                                         abs=1e-3)
