"""Diffusion priors (pixel-space ADM / diffusers UNets + DDPM schedules) and generative receivers.

The names below are imported on first use (``lazy_loader``), so that the torch-free
:mod:`.settings` (read by the scenario validator) loads without torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "adm_unet": ["ADMUNet"],
    "loaders": ["PRIOR_CONFIGS", "PRIOR_SOURCES", "load_adm_prior", "load_diffusers_prior", "load_prior"],
    "prior": ["Prior"],
    "schedules": ["cosine_betas", "linear_betas", "log_snr", "respaced_betas", "spaced_timesteps"],
})
