"""LRISC: latent features sent by an adaptive-length SNR-adaptive JSCC, decoded by a
latent-conditioned diffusion model (or the plain synthesis transform)."""
