"""Diffusion receivers as image methods: ADJSCC encoder -> analog chain -> DiffCom-family sampler.

Kinds ``diffcom``, ``hifi_diffcom`` and ``blind_diffcom`` share the transmitter and the channel of
``kind: jscc`` (:class:`~linksim.codecs.jscc.method.JSCCMethod`); only the receiver differs.
``Decoded.nfe`` is the number of prior evaluations per image; Blind-DiffCom adds the column
``channel_nmse``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from linksim.phy.multipath import pdp

from ..base import Decoded, OperatingPoint, RxSignal
from ..jscc.method import JSCCMethod, check_jscc_point, load_jscc
from .blind import SUCCESS_NMSE, BlindDiffCom
from .diffcom import DiffCom
from .hifi import HiFiDiffCom
from .loaders import EMBEDDED_PRIOR_DIR

__all__ = ["EMBEDDED_PRIOR", "load_prior", "DiffComSettings", "HiFiDiffComSettings", "BlindDiffComSettings",
           "DiffComMethod", "HiFiDiffComMethod", "BlindDiffComMethod"]

#: where the project's embedded pixel-space DDPM will live (not trained yet)
#: ``prior: embedded`` (see :data:`linksim.codecs.diffusion.loaders.EMBEDDED_PRIOR_DIR`)
EMBEDDED_PRIOR = EMBEDDED_PRIOR_DIR


def load_prior(spec: str, device: str | torch.device = "cpu"):
    """The image prior named by ``spec``: ``embedded``, a checkpoint path, or a known name.

    Anything but ``embedded`` goes to :func:`linksim.codecs.diffusion.loaders.load_prior`
    (published names ``ffhq_10m``/``imagenet256_uncond``, diffusers directories, ADM ``.pt``).

    :raises FileNotFoundError: ``embedded`` while no embedded prior is shipped (names the file)
    """
    if spec == "embedded" and not EMBEDDED_PRIOR.is_dir():
        raise FileNotFoundError(f"no embedded diffusion prior: {EMBEDDED_PRIOR} does not exist "
                                f"(give prior: a checkpoint path or a known model name)")
    from .loaders import load_prior as _load

    return _load(str(EMBEDDED_PRIOR) if spec == "embedded" else spec, device)


def _check_prior(spec: str) -> None:
    """``ValueError`` (one line) unless the prior ``spec`` names an existing file or directory."""
    from linksim.weights import project_weights_dir

    from .loaders import PRIOR_SOURCES

    if spec == "embedded":
        if not EMBEDDED_PRIOR.is_dir():
            raise ValueError(f"no embedded diffusion prior: {EMBEDDED_PRIOR} does not exist")
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
    :param prior: ``embedded``, a checkpoint path or a model name (:func:`load_prior`)
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


class DiffComMethod(JSCCMethod):
    """``kind: diffcom``: ADJSCC transmitter, analog chain, DiffCom receiver.

    :param config: :class:`DiffComSettings` (or the engine's model extending it)
    :param point: operating point
    :param prior: a ready prior object (tests, notebooks); default: :func:`load_prior`
    :param jscc: a ready ADJSCC; default: :func:`~linksim.codecs.jscc.method.load_jscc`
    """

    def __init__(self, config, point: OperatingPoint, prior=None, jscc=None):
        from linksim.phy.chains import AnalogChain

        self.config, self.point = config, point
        self.model = jscc if jscc is not None else load_jscc(config.jscc, point.cbr, point.device)
        self.prior = prior if prior is not None else load_prior(config.prior, point.device)
        h, w = point.image_shape
        self.num_symbols = self.model.num_symbols(h, w)
        self.chain = AnalogChain(point.link, self.num_symbols, device=point.device)
        self.receiver = self.build_receiver()

    def build_receiver(self):
        c, p = self.config, self.point
        return DiffCom(self.prior, self.model, p.csnr_db, p.image_shape, num_steps=c.num_steps, zeta=c.zeta,
                       lr=c.lr, autocast=c.autocast, measurement=c.measurement)

    @classmethod
    def check(cls, config, point: OperatingPoint) -> None:
        """As ``jscc`` (CBR = C/96, sides multiple of 4, grid fits) with ``config.jscc`` weights."""
        check_jscc_point(config.jscc, point, config.kind)
        _check_prior(config.prior)

    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        return self.receiver.decode(rx, rx.state, generator)


class HiFiDiffComMethod(DiffComMethod):
    """``kind: hifi_diffcom``: adaptive start from the JSCC decode at the point's CSNR and CBR."""

    def build_receiver(self):
        c, p = self.config, self.point
        return HiFiDiffCom(self.prior, self.model, p.csnr_db, p.cbr, p.image_shape, zeta=c.zeta, gamma=c.gamma,
                           lr=c.lr, kappa=c.kappa, start_scale=c.start_scale, step_scale=c.step_scale,
                           autocast=c.autocast, measurement=c.measurement)


class BlindDiffComMethod(DiffComMethod):
    """``kind: blind_diffcom``: no channel estimate, no pilots; needs ``channel: ofdm``
    (exponential PDP). Runs on ``pilot_symbols: 0``; ``pilot_aided: true`` is labelled in the
    ``pilot_aided`` column of ``results.csv``."""

    extra_columns = ("channel_nmse", "channel_success", "pilot_aided")
    needs_channel_estimate = False

    @classmethod
    def check(cls, config, point: OperatingPoint) -> None:
        super().check(config, point)
        if point.link.kind != "ofdm":
            raise ValueError(f"blind_diffcom needs an OFDM channel with sample-spaced taps (ofdm); got {point.link.kind}")

    def build_receiver(self):
        c, p = self.config, self.point
        if p.link.kind != "ofdm":
            raise ValueError(f"blind_diffcom needs an OFDM channel with sample-spaced taps (ofdm); got {p.link.kind}")
        return BlindDiffCom(self.prior, self.model, p.csnr_db, p.image_shape, pdp(p.link.paths, p.link.decay),
                            num_steps=c.num_steps, zeta=c.zeta, lr=c.lr, lr_h=c.lr_h, autocast=c.autocast,
                            pilot_aided=c.pilot_aided, success_nmse=c.success_nmse)

    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        d = super().decode(rx, generator)
        if "channel_nmse" in d.extras:
            d.extras["pilot_aided"] = torch.full_like(d.extras["channel_nmse"], float(self.config.pilot_aided))
        return d
