"""Scenario config models of the image methods implemented in :mod:`linksim.codecs`.

The settings live in the torch-free ``settings`` modules of ``linksim.codecs`` (pure pydantic, usable without the
engine); these classes add the engine's :class:`~linksim.scenario.MethodConfig` (``name``,
``kind``) on top, because ``linksim.codecs`` must not import the engine.
"""

from __future__ import annotations

from typing import Literal

from linksim.codecs.diffjscc.settings import DiffJSCCSettings
from linksim.codecs.diffusion.settings import BlindDiffComSettings, DiffComSettings, HiFiDiffComSettings
from linksim.codecs.gesco.settings import GescoSettings
from linksim.codecs.jscc.settings import JSCCSettings
from linksim.codecs.lrisc.settings import LRISCSettings
from linksim.codecs.separation_settings import IdealBoundSettings, SeparationSettings
from linksim.configs import MethodConfig

__all__ = ["SeparationConfig", "IdealBoundConfig", "JSCCConfig", "DiffComConfig", "HiFiDiffComConfig",
           "BlindDiffComConfig", "DiffJSCCConfig", "GescoConfig", "LRISCConfig"]


class SeparationConfig(MethodConfig, SeparationSettings):
    """``kind: separation`` — see :class:`linksim.codecs.separation.SeparationSettings`."""

    kind: Literal["separation"] = "separation"


class IdealBoundConfig(MethodConfig, IdealBoundSettings):
    """``kind: ideal`` — see :class:`linksim.codecs.separation.IdealBoundSettings` (a bound)."""

    kind: Literal["ideal"] = "ideal"


class JSCCConfig(MethodConfig, JSCCSettings):
    """``kind: jscc`` — see :class:`linksim.codecs.jscc.method.JSCCSettings`."""

    kind: Literal["jscc"] = "jscc"


class DiffComConfig(MethodConfig, DiffComSettings):
    """``kind: diffcom`` — see :class:`linksim.codecs.diffusion.method.DiffComSettings`."""

    kind: Literal["diffcom"] = "diffcom"


class HiFiDiffComConfig(MethodConfig, HiFiDiffComSettings):
    """``kind: hifi_diffcom`` — see :class:`linksim.codecs.diffusion.method.HiFiDiffComSettings`."""

    kind: Literal["hifi_diffcom"] = "hifi_diffcom"


class BlindDiffComConfig(MethodConfig, BlindDiffComSettings):
    """``kind: blind_diffcom`` — see :class:`linksim.codecs.diffusion.method.BlindDiffComSettings`."""

    kind: Literal["blind_diffcom"] = "blind_diffcom"


class DiffJSCCConfig(MethodConfig, DiffJSCCSettings):
    """``kind: diffjscc`` — see :class:`linksim.codecs.diffjscc.method.DiffJSCCSettings`."""

    kind: Literal["diffjscc"] = "diffjscc"


class GescoConfig(MethodConfig, GescoSettings):
    """``kind: gesco`` — see :class:`linksim.codecs.gesco.method.GescoSettings`."""

    kind: Literal["gesco"] = "gesco"


class LRISCConfig(MethodConfig, LRISCSettings):
    """``kind: lrisc`` — see :class:`linksim.codecs.lrisc.method.LRISCSettings`."""

    kind: Literal["lrisc"] = "lrisc"
