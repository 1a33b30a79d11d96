"""Fake methods registered by the engine tests (a study and an image method)."""

from __future__ import annotations

from typing import Literal

import torch

from linksim.codecs.base import Decoded, ImageMethod, RxSignal, TxSignal
from linksim.phy.links import GridInfo
from linksim.registry import METHODS
from linksim.scenario import MethodConfig
from linksim.studies import Study, StudyConfig

CALLS: list[str] = []  # point keys, in call order
FAIL_AT: dict = {"ebno_db": None}  # raise when this Eb/N0 is reached (simulates a killed run)


class FakeStudyConfig(StudyConfig):
    kind: Literal["fake_study"] = "fake_study"
    scale: float = 1.0


class FakeStudy(Study):
    """Returns a number drawn from the point's generator (so seeds are visible in the results)."""

    def run(self, generator, progress=None):
        CALLS.append(f"{self.config.name}:{self.point.ebno_db}")
        if FAIL_AT["ebno_db"] is not None and self.point.ebno_db == FAIL_AT["ebno_db"]:
            raise RuntimeError("injected failure")
        draw = torch.rand(4, generator=generator)
        return {"ebno_db": self.point.ebno_db, "ber": float(draw[0]) * self.config.scale,
                "bler": float(draw[1]), "bits": 100, "bit_errors": int(draw[2] * 100), "blocks": 10,
                "block_errors": int(draw[3] * 10), "modulation": "qpsk", "coding": "none"}


class FakeImageConfig(MethodConfig):
    kind: Literal["fake_image"] = "fake_image"
    weights: str | None = None  # a user's weight file, never read (the store fingerprints it)


class FakeImageMethod(ImageMethod):
    """Sends images as they are through AWGN-like noise at the point's CSNR (no phy chain)."""

    def grid(self):
        return GridInfo(num_data=self.point.num_symbols)

    def encode(self, images, generator):
        return TxSignal(x=images.clone())

    def channel(self, tx, channel_generator, noise_generator):
        no = self.point.no
        y = tx.x + (no**0.5) * torch.randn(tx.x.shape, generator=noise_generator)
        return RxSignal(y=y)

    def decode(self, rx, generator):
        return Decoded(images=rx.y.clamp(0, 1))


class FakeStepsConfig(MethodConfig):
    kind: Literal["fake_steps"] = "fake_steps"
    num_steps: int = 7


class FakeStepsMethod(FakeImageMethod):
    """Like :class:`FakeImageMethod`, but its decode reports ``num_steps`` network evaluations."""

    def decode(self, rx, generator):
        return Decoded(images=rx.y.clamp(0, 1), nfe=self.config.num_steps)


def register():
    for name, cls, cfg in (("fake_study", FakeStudy, FakeStudyConfig),
                           ("fake_image", FakeImageMethod, FakeImageConfig),
                           ("fake_steps", FakeStepsMethod, FakeStepsConfig)):
        if name not in METHODS:
            METHODS.add(name, cls, cfg, f"test fake ({cls.__name__})")


def unregister():
    METHODS.remove("fake_study")
    METHODS.remove("fake_image")
    METHODS.remove("fake_steps")
