"""CBR arithmetic of the JSCC models and where their embedded weights are (torch-free: the models,
their loaders and the validator's checks, :mod:`.settings`, all use it).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..point import parse_cbr

__all__ = ["EMBEDDED_DIR", "ADJSCC_DOWNSAMPLING", "RESNET_DOWNSAMPLING", "parse_cbr", "latent_channels",
           "embedded_path", "embedded_resnet_path", "check_model_cbr"]

#: the project's JSCC weights (ADJSCC per CBR, the x16 ResNet JSCC of DiffJSCC's stage 1)
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
#: spatial down-sampling of ADJSCC (two stride-2 convolutions) and of the x16 ResNet JSCC
ADJSCC_DOWNSAMPLING, RESNET_DOWNSAMPLING = 4, 16


def latent_channels(cbr, downsampling: int, name: str = "the model") -> int:
    """Latent channels ``C = 6·d²·ρ`` of a JSCC with down-sampling ``d`` for CBR ``ρ``
    (``N = C·(H/d)·(W/d)/2`` complex symbols for ``3·H·W`` values).

    >>> latent_channels("1/48", 4), latent_channels("1/384", 16)
    (2, 4)
    """
    per = 6 * downsampling**2  # CBR = C / per
    c = parse_cbr(cbr) * per
    if c.denominator != 1 or c < 1:
        raise ValueError(f"{name} realises CBRs k/{per} (k = 1, 2, ...); got {cbr} (C would be {float(c):g})")
    return int(c)


def embedded_path(cbr) -> Path:
    """Path of the embedded ADJSCC weights for a CBR: ``embedded/adjscc_c{C}.safetensors``."""
    return EMBEDDED_DIR / f"adjscc_c{latent_channels(cbr, ADJSCC_DOWNSAMPLING, 'ADJSCC')}.safetensors"


def embedded_resnet_path(cbr) -> Path:
    """Path of the project's ResNet JSCC for a CBR: ``embedded/resnet_c{C}.safetensors``."""
    return EMBEDDED_DIR / f"resnet_c{latent_channels(cbr, RESNET_DOWNSAMPLING, 'ResNetJSCC')}.safetensors"


def check_model_cbr(model: str, channels: int, downsampling: int, cbr) -> None:
    """``ValueError`` when a model with ``channels`` latent channels does not realise ``cbr``."""
    want, have = parse_cbr(cbr), Fraction(channels, 6 * downsampling**2)
    if have != want:
        raise ValueError(f"model {model!r} has C={channels} (CBR {have}); the sweep point asks for CBR {want}")
