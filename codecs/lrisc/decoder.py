"""LRISC's latent-conditioned diffusion decoder.

A diffusers ``UNet2DModel`` (:func:`linksim.codecs.diffjscc.pixel.build_conditional_unet` with
``cond_channels = M``) denoises ``x_t`` given the decoded latent ``ŷ`` ``[B, M, H/8, W/8]``,
upsampled to the image size (nearest: every pixel of an 8x8 cell sees its cell's latent vector)
and divided by ``latent_scale`` (the RMS of training latents, so the condition is O(1)), and the
SNR through the timestep-style class embedding (:data:`~linksim.codecs.diffjscc.pixel.SNR_SCALE`).
Sampling: DDIM from pure noise (:meth:`~linksim.codecs.diffjscc.pixel.PixelRefiner.sample`),
``num_steps`` network evaluations.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.nn import functional as F

from .model import DOWNSAMPLING

__all__ = ["latent_condition", "ddim_alphas", "export_decoder", "LatentDiffusionDecoder", "load_decoder"]


def latent_condition(y_hat: torch.Tensor, latent_scale: float) -> torch.Tensor:
    """``ŷ`` ``[B, M, h, w]`` -> condition ``[B, M, 8h, 8w]`` (nearest upsampling, / ``latent_scale``)."""
    return F.interpolate(y_hat / latent_scale, scale_factor=DOWNSAMPLING, mode="nearest")


def ddim_alphas(sched: dict) -> torch.Tensor:
    """``ᾱ_t`` ``[T]`` float32 of the training schedule (the one the sampler's DDIM uses)."""
    from ..diffjscc.pixel import ddim_scheduler

    return ddim_scheduler(sched).alphas_cumprod.to(torch.float32)


def export_decoder(ema_unet, sched: dict, dest: str | Path, dtype: str = "float16", extra: dict | None = None) -> Path:
    """A diffusers directory (``config.json``, safetensors, ``scheduler_config.json``,
    ``training.json`` with ``latent_scale``) that :func:`load_decoder` reads."""
    from ..diffjscc.training import export_refiner

    return export_refiner(ema_unet, sched, dest, dtype, extra)


class LatentDiffusionDecoder:
    """``ŷ`` + SNR -> image by DDIM (module notes).

    :param refiner: a :class:`~linksim.codecs.diffjscc.pixel.PixelRefiner` over the latent-conditioned UNet
    :param latent_scale: the condition's normaliser (from ``training.json``)
    """

    def __init__(self, refiner, latent_scale: float):
        self.refiner = refiner
        self.latent_scale = float(latent_scale)

    @torch.no_grad()
    def decode(self, y_hat: torch.Tensor, snr_db: torch.Tensor, num_steps: int, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """:input y_hat: ``[B, M, h, w]``; :input snr_db: ``[B]`` [dB]; :output: ``[B, 3, 8h, 8w]`` in [0, 1]."""
        return self.refiner.sample(latent_condition(y_hat, self.latent_scale), snr_db, num_steps, eta, generator)


def load_decoder(path: str | Path, device: str | torch.device = "cpu") -> LatentDiffusionDecoder:
    """The decoder in a directory written by :func:`export_decoder` (float32, eval).

    :raises FileNotFoundError: naming the missing file
    """
    from ..diffjscc.pixel import load_pixel_refiner

    path = Path(path)
    info = path / "training.json"
    if not info.is_file():
        raise FileNotFoundError(f"LRISC diffusion decoder file missing: {info}")
    return LatentDiffusionDecoder(load_pixel_refiner(path, device), json.loads(info.read_text())["latent_scale"])
