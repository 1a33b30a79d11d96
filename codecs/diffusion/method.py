"""Diffusion receivers as image methods: ADJSCC encoder -> analog chain -> DiffCom-family sampler.

Kinds ``diffcom``, ``hifi_diffcom`` and ``blind_diffcom`` share the transmitter and the channel of
``kind: jscc`` (:class:`~linksim.codecs.jscc.method.JSCCMethod`); only the receiver differs.
``Decoded.nfe`` is the number of prior evaluations per image; Blind-DiffCom adds the column
``channel_nmse``.
"""

from __future__ import annotations

import torch

from linksim.phy.multipath import pdp

from ..base import Decoded, OperatingPoint, RxSignal
from ..jscc.method import JSCCMethod, load_jscc
from .blind import BlindDiffCom
from .diffcom import DiffCom
from .hifi import HiFiDiffCom
# settings and static checks are torch-free (the validator's); re-exported for the method's users
from .settings import BlindDiffComSettings, DiffComSettings, EMBEDDED_PRIOR_DIR, HiFiDiffComSettings  # noqa: F401

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
