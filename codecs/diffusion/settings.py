"""Settings of the DiffCom family (``diffcom``, ``hifi_diffcom``, ``blind_diffcom``) and their
static checks at an operating point.

Torch-free: the scenario validator reads these models and runs their ``check_point`` without
importing torch (``linksim validate``); the receivers are :mod:`linksim.codecs.diffusion.method`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from linksim.weights import KNOWN, project_weights_dir

from ..jscc.settings import check_jscc_point

__all__ = ["DiffComSettings", "HiFiDiffComSettings", "BlindDiffComSettings", "EMBEDDED_PRIOR_DIR", "PRIOR_SOURCES",
           "SUCCESS_NMSE"]

#: ``prior: embedded``: the project's pixel-space DDPM (a diffusers folder)
EMBEDDED_PRIOR_DIR = Path(__file__).parent / "embedded" / "ddpm"
#: Blind-DiffCom: a run "succeeds" when its tap NMSE is below this (−10 dB); ``channel_success`` per image
SUCCESS_NMSE = 0.1
#: published priors by name (their architectures: :data:`linksim.codecs.diffusion.loaders.PRIOR_CONFIGS`):
#: file name and where to get it (:data:`linksim.weights.KNOWN`; never fetched here)
PRIOR_SOURCES: dict[str, dict[str, str]] = {
    name: dict(filename=KNOWN[name].filename, url=KNOWN[name].url) for name in ("ffhq_10m", "imagenet256_uncond")
}


def _check_prior(spec: str) -> None:
    """``ValueError`` (one line) unless the prior ``spec`` names an existing file or directory."""
    if spec == "embedded":
        if not EMBEDDED_PRIOR_DIR.is_dir():
            raise ValueError(f"no embedded diffusion prior: {EMBEDDED_PRIOR_DIR} does not exist")
    elif spec in PRIOR_SOURCES:
        # the directory loaders.load_prior looks in for published names
        path = project_weights_dir() / PRIOR_SOURCES[spec]["filename"]
        if not path.is_file():
            raise ValueError(f"prior {spec!r}: {path} does not exist (download it from {PRIOR_SOURCES[spec]['url']})")
    elif not Path(spec).expanduser().exists():
        raise ValueError(f"prior {spec!r} is neither 'embedded', a known name ({', '.join(PRIOR_SOURCES)}) "
                         f"nor an existing file or directory")


class DiffComSettings(BaseModel):
    """Settings of ``kind: diffcom`` (strict).

    :param jscc: ADJSCC weights, as ``kind: jscc``'s ``model`` (``embedded`` = per CBR), or the name of
        a ``kind: jscc`` method of the same scenario (its ``model`` is used)
    :param prior: ``embedded``, a checkpoint path or a model name (:func:`linksim.codecs.diffusion.method.load_prior`)
    :param num_steps: strided reverse steps (``None`` = all ``T``)
    :param zeta: ζ, weight of ``‖y − A(x̂0)‖₂``
    :param lr: guidance step size
    :param autocast: run the prior in reduced precision
    :param measurement: ``received`` (default, the reference: ζ‖Y_data − Ĥ⊙X(x̂0)‖ on the
        un-equalised received data samples) or ``equalised`` (linksim variant: residual of the
        equalised symbols, each weighted by the MMSE bias ``1/(1 + no_eff)``)
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    jscc: str = "embedded"
    prior: str = "embedded"
    num_steps: int | None = None
    zeta: float = 1.0
    lr: float = 1.0
    autocast: bool = False
    measurement: Literal["received", "equalised"] = "received"

    def check_point(self, point) -> None:
        """As ``jscc`` (CBR = C/96, sides multiple of 4, grid fits) with ``jscc`` weights; the prior exists."""
        check_jscc_point(self.jscc, point, self.kind)
        _check_prior(self.prior)


class HiFiDiffComSettings(DiffComSettings):
    """``kind: hifi_diffcom``: adds γ, κ, ``start_scale`` (the paper's N: start at
    ``int(t_start·N)``, then every step to 0) and ``step_scale`` (linksim's speed option: the
    fraction of those ``t_start'+1`` steps actually taken, strided); both combine."""

    zeta: float = 0.25
    gamma: float = 0.25
    kappa: float = 5.0
    start_scale: float = Field(1.0, gt=0)
    step_scale: float = Field(1.0, gt=0, le=1)


class BlindDiffComSettings(DiffComSettings):
    """``kind: blind_diffcom``: ``lr`` is the initial ``lr_x`` (-> 0), ``lr_h`` the taps' (-> 0);
    the received data REs are used as they are (no estimate, no equaliser, no pilots), so
    ``measurement`` can only be ``received``. ``pilot_aided: true`` (not the paper's method) adds
    the known pilot REs; ``success_nmse`` is the tap-NMSE threshold of ``channel_success``."""

    lr_h: float = 0.2
    measurement: Literal["received"] = "received"
    pilot_aided: bool = False
    success_nmse: float = Field(SUCCESS_NMSE, gt=0)

    def check_point(self, point) -> None:
        """As ``diffcom``, on an OFDM channel with sample-spaced taps."""
        super().check_point(point)
        if point.link.kind != "ofdm":
            raise ValueError(f"blind_diffcom needs an OFDM channel with sample-spaced taps (ofdm); got {point.link.kind}")
