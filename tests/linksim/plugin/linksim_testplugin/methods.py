"""The test plug-in's methods (imported on first use through the registry's ``"module:attr"`` entries).

The plug-in folder is put on ``sys.path`` (``PYTHONPATH`` of a ``linksim run`` subprocess, or ``sys.path``
of the test process, which spawn workers of the process executor inherit); the
``linksim_testplugin-0.1.dist-info`` beside this file declares the entry point, so the methods are
found by :func:`linksim.registry.load_entry_points` exactly like a pip-installed plug-in's.

Behaviour is steered through environment variables (a subprocess or a worker sees them too):

* ``LINKSIM_TESTPLUGIN_LOG``: a file; each job appends ``<method>:<ebno_db or csnr_db>`` (what ran);
* ``LINKSIM_TESTPLUGIN_FAIL``: a value of the point's Eb/N0 at which ``plugin_study`` raises;
* ``LINKSIM_TESTPLUGIN_SLEEP``: seconds each job sleeps (leaves time for a kill from outside).
"""

from __future__ import annotations

import os
import time
from typing import Literal

import torch

from linksim.codecs.base import Decoded, ImageMethod, RxSignal, TxSignal
from linksim.phy.links import GridInfo
from linksim.scenario import MethodConfig
from linksim.studies import Study


def _ran(name: str, value) -> None:
    log = os.environ.get("LINKSIM_TESTPLUGIN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{name}:{value}\n")
    time.sleep(float(os.environ.get("LINKSIM_TESTPLUGIN_SLEEP", "0")))


class PluginStudyConfig(MethodConfig):
    kind: Literal["plugin_study"] = "plugin_study"
    scale: float = 1.0


class PluginStudy(Study):
    """A number drawn from the point's generator (seeds show in the results), times ``scale``."""

    def run(self, generator, progress=None):
        _ran(self.config.name, self.point.ebno_db)
        fail = os.environ.get("LINKSIM_TESTPLUGIN_FAIL")
        if fail is not None and self.point.ebno_db == float(fail):
            raise RuntimeError(f"injected failure at ebno_db={fail}")
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
