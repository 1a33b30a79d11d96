"""The test plug-in's methods (imported on first use through the registry's ``"module:attr"`` entries).

The plug-in folder is put on ``sys.path`` (``PYTHONPATH`` of a ``linksim run`` subprocess, or ``sys.path``
of the test process, which spawn workers of the process executor inherit); the
``linksim_testplugin-0.1.dist-info`` beside this file declares the entry point, so the methods are
found by :func:`linksim.registry.load_entry_points` exactly like a pip-installed plug-in's.

Behaviour is steered through environment variables (a subprocess or a worker sees them too):

* ``LINKSIM_TESTPLUGIN_LOG``: a file; each job appends ``<method>:<ebno_db or csnr_db>`` (what ran);
* ``LINKSIM_TESTPLUGIN_FAIL``: a value of the point's Eb/N0 at which ``plugin_study`` raises;
* ``LINKSIM_TESTPLUGIN_SLEEP``: seconds each job that does not fail sleeps (leaves time for a kill
  from outside; the failing job raises at once);
* ``LINKSIM_TESTPLUGIN_ERROR``: ``data`` makes the failure a :class:`linksim.errors.DataError`
  (a linksim error, printed as one line) instead of a ``RuntimeError``;
* ``LINKSIM_TESTPLUGIN_TIMES``: a file; each job appends ``start <value> <time.time()>`` when it
  starts and ``end <value> <time>`` when it returns or raises;
* ``LINKSIM_TESTPLUGIN_THREADS``: a file; each job appends ``<value> <torch.get_num_threads()>``
  (the torch threads a worker gave the job);
* ``LINKSIM_TESTPLUGIN_CONTROL``: a JSON file whose keys ``log``, ``fail``, ``sleep``, ``error``,
  ``times``, ``threads`` override the six above, read at every job (Ray's workers see only the
  environment of the moment Ray started).
"""

from __future__ import annotations

import json
import os
import time
from typing import Literal

import torch

from linksim.codecs.base import Decoded, ImageMethod, RxSignal, TxSignal
from linksim.phy.links import GridInfo
from linksim.scenario import MethodConfig
from linksim.studies import Study, StudyConfig


def _setting(key: str):
    control = os.environ.get("LINKSIM_TESTPLUGIN_CONTROL")
    if control and os.path.exists(control):
        with open(control, encoding="utf-8") as f:
            values = json.load(f)
        if key in values:
            return values[key]
    return os.environ.get(f"LINKSIM_TESTPLUGIN_{key.upper()}")


def _ran(name: str, value, fail: bool = False) -> None:
    """Log that the job ran; raise when it is the failing one, else sleep."""
    log = _setting("log")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{name}:{value}\n")
    _stamp("start", value)
    threads = _setting("threads")
    if threads:
        with open(threads, "a", encoding="utf-8") as f:
            f.write(f"{value} {torch.get_num_threads()}\n")
    try:
        _outcome(value, fail)
    finally:
        _stamp("end", value)


def _stamp(what: str, value) -> None:
    times = _setting("times")
    if times:
        with open(times, "a", encoding="utf-8") as f:
            f.write(f"{what} {value} {time.time()!r}\n")


def _outcome(value, fail: bool) -> None:
    if fail:
        if _setting("error") == "data":
            from linksim.errors import DataError

            raise DataError(f"image-{value}.png", "injected: cannot decode the image")
        raise RuntimeError(f"injected failure at ebno_db={_setting('fail')}")
    time.sleep(float(_setting("sleep") or 0))


class PluginStudyConfig(StudyConfig):
    kind: Literal["plugin_study"] = "plugin_study"
    scale: float = 1.0


class PluginStudy(Study):
    """A number drawn from the point's generator (seeds show in the results), times ``scale``."""

    def run(self, generator, progress=None):
        fail = _setting("fail")
        _ran(self.config.name, self.point.ebno_db, fail is not None and self.point.ebno_db == float(fail))
        draw = torch.rand(4, generator=generator)
        return {"ebno_db": self.point.ebno_db, "ber": float(draw[0]) * self.config.scale,
                "bler": float(draw[1]), "bits": 100, "bit_errors": int(draw[2] * 100), "blocks": 10,
                "block_errors": int(draw[3] * 10), "modulation": "qpsk", "coding": "none"}


class PluginImageConfig(MethodConfig):
    kind: Literal["plugin_image"] = "plugin_image"


class PluginImageMethod(ImageMethod):
    """Images sent as they are, plus real Gaussian noise of variance 10^(-CSNR/10)."""

    def grid(self):
        return GridInfo(num_data=self.point.num_symbols)

    def encode(self, images, generator):
        return TxSignal(x=images.clone())

    def channel(self, tx, channel_generator, noise_generator):
        y = tx.x + (self.point.no**0.5) * torch.randn(tx.x.shape, generator=noise_generator)
        return RxSignal(y=y)

    def decode(self, rx, generator):
        _ran(self.config.name, self.point.csnr_db)
        return Decoded(images=rx.y.clamp(0, 1))
