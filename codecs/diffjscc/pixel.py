"""The embedded DiffJSCC stage 2: a small pixel-space conditional DDPM.

Where the paper conditions a control network on frozen Stable Diffusion with the VAE latent of
the stage-1 reconstruction and an SNR embedding, the embedded variant (CPU, 32–64 px) denoises in
pixel space with a diffusers ``UNet2DModel`` whose input is ``[x_t ‖ x_s1]`` (6 channels: the noisy
image and the stage-1 reconstruction, both in [-1, 1]) and whose class embedding is a sinusoidal
embedding of the CSNR (``class_embed_type="timestep"``: the SNR, scaled by :data:`SNR_SCALE`,
goes through the same sinusoid + MLP as the timestep and is added to the time embedding, as the
paper's SNR embedding is). Trained with the DDPM ε-MSE (:mod:`.training`); sampled from pure
noise with DDIM (diffusers ``DDIMScheduler``, 20–50 steps; ``eta`` 0 = deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from linksim.weights import verify_shipped

# the weight folders are torch-free (the validator checks the refiner's files); re-exported here
from .settings import EMBEDDED_DDPM_DIR, EMBEDDED_DIR  # noqa: F401

__all__ = ["SNR_SCALE", "EMBEDDED_DIR", "EMBEDDED_DDPM_DIR", "build_conditional_unet", "PixelRefiner",
           "load_pixel_refiner", "ddim_scheduler"]

#: CSNR [dB] -> class label of the sinusoidal embedding (0–14 dB -> 0–700, the timestep range)
SNR_SCALE = 50.0


def build_conditional_unet(cfg, sample_size: int, cond_channels: int = 3):
    """``UNet2DModel`` ``3 + cond_channels`` -> 3 channels with a timestep-style class (SNR) embedding.

    :param cfg: :class:`linksim.codecs.diffusion.training.UNetConfig` (widths, levels, attention)
    :param cond_channels: channels of the condition concatenated to ``x_t`` (3: DiffJSCC's stage-1
        image; LRISC: its decoded latent, upsampled)
    """
    from diffusers import UNet2DModel

    n = len(cfg.block_out_channels)
    attn = set(cfg.attention_levels if cfg.attention_levels is not None else [n - 1])
    if sample_size % 2 ** (n - 1):
        raise ValueError(f"crop {sample_size} must be divisible by 2^{n - 1} for {n} UNet levels")
    return UNet2DModel(
        sample_size=sample_size, in_channels=3 + cond_channels, out_channels=3, block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        down_block_types=tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(n)),
        up_block_types=tuple("AttnUpBlock2D" if i in attn else "UpBlock2D" for i in reversed(range(n))),
        attention_head_dim=cfg.attention_head_dim, norm_num_groups=cfg.norm_num_groups, dropout=cfg.dropout,
        class_embed_type="timestep",
    )


def ddim_scheduler(sched: dict):
    """A diffusers ``DDIMScheduler`` on the training schedule ``sched`` (training's scheduler_config;
    its ``prediction_type``, default ``epsilon``)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=sched["num_train_timesteps"], beta_start=sched["beta_start"],
                         beta_end=sched["beta_end"], beta_schedule=sched.get("beta_schedule", "linear"),
                         prediction_type=sched.get("prediction_type", "epsilon"), clip_sample=True, set_alpha_to_one=False,
                         timestep_spacing="trailing")


class PixelRefiner(nn.Module):
    """Conditional ε-model + DDIM sampler: stage-1 reconstruction + CSNR -> refined image.

    :param unet: the 6-channel ``UNet2DModel`` of :func:`build_conditional_unet`
    :param sched: scheduler kwargs (``num_train_timesteps``, ``beta_start``, ``beta_end``)
    """

    def __init__(self, unet: nn.Module, sched: dict):
        super().__init__()
        self.unet = unet
        self.sched = dict(sched)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, csnr_db: torch.Tensor) -> torch.Tensor:
        """The UNet's output (ε̂, or x̂0 / v per the schedule's ``prediction_type``) at ``(x_t, t | cond, snr)``:
        ``x_t`` ``[B, 3, H, W]`` in [-1, 1], ``cond`` ``[B, C, H, W]``; ``t``, ``csnr_db`` ``[B]``."""
        labels = csnr_db.to(x_t.dtype).reshape(-1) * SNR_SCALE
        return self.unet(torch.cat((x_t, cond), dim=1), t, class_labels=labels).sample

    @torch.no_grad()
    def refine(self, x_s1: torch.Tensor, csnr_db, num_steps: int = 50, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM from pure noise conditioned on ``x_s1``.

        :param x_s1: ``[B, 3, H, W]`` stage-1 reconstruction in [0, 1]
        :param csnr_db: float or ``[B]`` [dB]
        :param num_steps: DDIM steps (= network evaluations)
        :param eta: DDIM stochasticity (0: deterministic given the initial noise)
        :param generator: draws the initial noise (and the DDIM noise for ``eta > 0``); on the device
        :return: ``[B, 3, H, W]`` in [0, 1]
        """
        return self.sample(x_s1 * 2 - 1, csnr_db, num_steps, eta, generator)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, csnr_db, num_steps: int = 50, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM from pure noise given any condition ``cond`` ``[B, C, H, W]`` (as the UNet was trained).

        :return: ``[B, 3, H, W]`` in [0, 1]
        """
        dev, dtype = cond.device, next(self.unet.parameters()).dtype
        b = cond.shape[0]
        snr = torch.as_tensor(csnr_db, dtype=torch.float32, device=dev).reshape(-1).expand(b)
        cond = cond.to(dtype)
        sch = ddim_scheduler(self.sched)
        sch.set_timesteps(num_steps, device=dev)
        x = torch.randn((b, 3, *cond.shape[-2:]), generator=generator, device=dev, dtype=dtype)
        for t in sch.timesteps:
            out = self.eps(x, t.expand(b), cond, snr)
            x = sch.step(out, t, x, eta=eta, generator=generator).prev_sample
        return ((x.float() + 1) / 2).clamp(0, 1)


def load_pixel_refiner(path: str | Path | None = None, device: str | torch.device = "cpu") -> PixelRefiner:
    """The refiner in a diffusers directory written by :func:`.training.export_refiner` (float32, eval).

    :param path: the directory (default: the embedded weights, :data:`EMBEDDED_DDPM_DIR`)
    :raises FileNotFoundError: naming the missing file
    """
    from diffusers import UNet2DModel

    path = Path(path or EMBEDDED_DDPM_DIR)
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"DiffJSCC refiner file missing: {path / name}")
    verify_shipped(path / "diffusion_pytorch_model.safetensors")
    unet = UNet2DModel.from_pretrained(path).float()
    sched = json.loads((path / "scheduler_config.json").read_text())
    return PixelRefiner(unet, sched).to(device).eval()
