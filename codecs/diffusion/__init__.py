"""Diffusion priors (pixel-space ADM / diffusers UNets + DDPM schedules) and generative receivers."""

from .adm_unet import ADMUNet
from .loaders import PRIOR_CONFIGS, PRIOR_SOURCES, load_adm_prior, load_diffusers_prior, load_prior
from .prior import Prior
from .schedules import cosine_betas, linear_betas, log_snr, respaced_betas, spaced_timesteps

__all__ = [
    "ADMUNet",
    "PRIOR_CONFIGS",
    "PRIOR_SOURCES",
    "Prior",
    "cosine_betas",
    "linear_betas",
    "load_adm_prior",
    "load_diffusers_prior",
    "load_prior",
    "log_snr",
    "respaced_betas",
    "spaced_timesteps",
]
