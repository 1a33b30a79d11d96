"""DiffJSCC as an image method (``kind: diffjscc``): stage-1 JSCC -> analog chain -> stage-1
decode -> diffusion refinement conditioned on that decode and the SNR -> wavelet colour fix.

::

    images --stage-1 JSCC encode--> x [B,N] --AnalogChain--> y_eq, no_eff
      --stage-1 decode--> x_s1 [B,3,H,W]
      --refiner(x_s1, SNR): embedded pixel DDPM (DDIM) | SD 2.1 + control network (spaced DDPM)-->
      --wavelet colour fix against x_s1--> images

The transmitter and channel are those of ``kind: jscc`` (:class:`~linksim.codecs.jscc.method.JSCCMethod`);
stage 1 is any linksim JSCC (``jscc:``: ``embedded_resnet`` = the paper's x16 ResNet JSCC,
``embedded`` = ADJSCC, a weights file, or the name of a ``kind: jscc`` method of the scenario).
The SNR the refiner sees is the one the stage-1 decoder sees: ``-10·log10(mean no_eff)`` after
equalisation (the paper's CSI; on AWGN the nominal CSNR).
"""

from __future__ import annotations

import torch

from ..base import Decoded, OperatingPoint, RxSignal
from ..jscc.method import JSCCMethod, load_jscc
from .colorfix import wavelet_color_fix
# settings and static checks are torch-free (the validator's); re-exported for the method's users
from .settings import DiffJSCCSettings, refiner_dir  # noqa: F401

__all__ = ["DiffJSCCSettings", "DiffJSCCMethod", "refiner_snr_db"]


def refiner_snr_db(csnr_db: float, no_eff: torch.Tensor | None, batch: int, device) -> torch.Tensor:
    """``[B]`` SNR [dB] for the refiner: ``-10·log10(mean_k no_eff)`` per image, else the nominal CSNR."""
    if no_eff is not None:
        return -10.0 * torch.log10(no_eff.float().reshape(batch, -1).mean(dim=1).clamp_min(1e-12))
    return torch.full((batch,), float(csnr_db), device=device)


class DiffJSCCMethod(JSCCMethod):
    """``kind: diffjscc``.

    :param config: :class:`DiffJSCCSettings` (or the engine's model extending it)
    :param point: operating point
    :param jscc: a ready stage-1 model (tests); default :func:`~linksim.codecs.jscc.method.load_jscc`
    :param refiner: a ready refiner with ``refine(x_s1, snr_db, num_steps, generator=) -> images`` (tests)
    """

    def __init__(self, config, point: OperatingPoint, jscc=None, refiner=None):
        from linksim.phy.chains import AnalogChain

        self.config, self.point = config, point
        self.model = jscc if jscc is not None else load_jscc(config.jscc, point.cbr, point.device)
        h, w = point.image_shape
        self.num_symbols = self.model.num_symbols(h, w)
        self.chain = AnalogChain(point.link, self.num_symbols, device=point.device)
        self.refiner = refiner if refiner is not None else self._load_refiner()

    def _load_refiner(self):
        c = self.config
        if c.backbone == "embedded":
            from .pixel import load_pixel_refiner

            return load_pixel_refiner(refiner_dir(c.refiner), self.point.device)
        from .sd import load_sd_refiner

        return load_sd_refiner(c.sd_path, c.control, caption=c.caption, device=self.point.device,
                               guidance_scale=c.guidance_scale)

    @property
    def num_steps(self) -> int:
        return self._steps(self.config)

    @staticmethod
    def _steps(config) -> int:
        return config.num_steps or (50 if config.backbone == "embedded" else 100)

    @classmethod
    def run_info(cls, config) -> dict:
        """run.json states the backbone, the step count and the text prompt: ``""`` (the empty
        prompt) without a captioner, else which captioner wrote it per image."""
        return {"backbone": config.backbone, "num_steps": cls._steps(config),
                "prompt": "" if config.caption == "none" else f"caption by {config.caption}"}

    @torch.no_grad()
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        no_eff = rx.state.no_eff if self.config.use_no_eff else None
        x1 = self.model.decode(rx.y, self.point.csnr_db, no_eff=no_eff, image_size=self.point.image_shape,
                               tx_scale=rx.tx_meta["tx_scale"]).clamp(0, 1)
        snr = refiner_snr_db(self.point.csnr_db, no_eff, x1.shape[0], x1.device)
        gen = generator
        if gen is not None and gen.device != x1.device:
            gen = torch.Generator(device=x1.device).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        kw = {"eta": self.config.eta} if self.config.backbone == "embedded" else {}
        out = self.refiner.refine(x1, snr, self.num_steps, generator=gen, **kw)
        if self.config.color_fix:
            out = wavelet_color_fix(out, x1).clamp(0, 1)
        return Decoded(images=out, nfe=self.num_steps)
