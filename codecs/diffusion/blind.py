"""Blind-DiffCom: joint posterior sampling of the image and the multipath taps, no channel estimate.

The receiver sees the raw received OFDM grid ``Y [B, F, S, M]`` (pilot and data REs, before any
estimation or equalisation) and models it as ``Y = H(h) ⊙ G(x) + N`` where

- ``G(x)`` = the transmitted grid: JSCC encoder -> unit power per image -> the stored interleaver
  -> the link's resource-grid mapper (pilots included) -> clipping when configured;
- ``H(h)[k] = Σ_l h_l exp(−j2π (k − M/2) l / M)``: the frequency response of ``L``
  sample-spaced taps on the centred subcarriers (the convention of
  :func:`linksim.phy.multipath.frequency_response`), constant over frames and OFDM symbols.

The taps get their own reverse process with the prior ``h_l ~ CN(0, p_l)`` (exponential PDP,
:func:`linksim.phy.multipath.pdp`; variance ``p_l/2`` per real part). Diffused with complex
noise ``CN(0, 1)`` on the image's schedule, ``h_t ~ CN(0, σ_t²)`` with
``σ_t² = ᾱ_t p_l + 1 − ᾱ_t``: the score is ``−h_t/σ_t²`` and Tweedie gives
``ĥ0 = √ᾱ_t p_l h_t / σ_t²`` analytically. ``x`` and ``h`` are updated jointly from
``ζ‖Y − H(ĥ0) ⊙ G(x̂0)‖₂``, with ``lr_x`` decaying linearly 1 -> 0 and ``lr_h`` 0.2 -> 0; the
loop starts at ``t = T−1``.
"""

from __future__ import annotations

import math

import torch

from .sampler import DiffusionReceiver

__all__ = ["taps_frequency_matrix", "BlindDiffCom"]


def taps_frequency_matrix(num_subcarriers: int, paths: int, dtype=torch.complex64, device="cpu") -> torch.Tensor:
    """``[M, L]`` matrix ``F[k, l] = exp(−j2π (k − M//2) l / M)``: ``H = F @ h`` for taps ``h [L]``.

    Matches :func:`linksim.phy.multipath.frequency_response` for taps at delays ``l/(M·Δf)``.
    """
    k = torch.arange(num_subcarriers, dtype=torch.float64) - num_subcarriers // 2
    phase = -2 * math.pi * k[:, None] * torch.arange(paths, dtype=torch.float64)[None, :] / num_subcarriers
    return torch.polar(torch.ones_like(phase), phase).to(dtype=dtype, device=device)


class BlindDiffCom(DiffusionReceiver):
    """Blind-DiffCom receiver (ζ=1, lr_x 1 -> 0, lr_h 0.2 -> 0 published) for ``kind: ofdm`` links.

    :param prior: image prior; :param jscc: frozen ADJSCC; :param csnr_db: CSNR [dB];
        :param image_shape: ``(H, W)``
    :param powers: ``[L]`` tap powers ``p_l`` of the channel prior (``pdp(paths, decay)``)
    :param lr_h: initial channel step size (decays linearly to 0)
    :param kwargs: :class:`DiffusionReceiver` options (``zeta``, ``lr`` = initial ``lr_x``,
        ``num_steps``, ...)

    ``Decoded.extras``: ``channel_nmse`` ``[B]`` = ``‖ĥ − h‖²/‖h‖²`` of the taps (the prior
    mean ``ĥ = 0`` scores 1).
    """

    def __init__(self, prior, jscc, csnr_db: float, image_shape, powers, *, zeta: float = 1.0, lr: float = 1.0,
                 lr_h: float = 0.2, **kwargs):
        super().__init__(prior, jscc, csnr_db, image_shape, zeta=zeta, lr=lr, **kwargs)
        self.powers = torch.as_tensor(powers, dtype=torch.float64).cpu()
        self.lr_h = float(lr_h)

    def prepare(self, rx, state) -> dict:
        link = getattr(state, "link", None)
        if link is None or getattr(link, "cfg", None) is None or link.cfg.kind != "ofdm":
            raise ValueError("Blind-DiffCom needs an OFDM link with sample-spaced taps (link kind 'ofdm')")
        if len(self.powers) != link.cfg.paths:
            raise ValueError(f"prior has {len(self.powers)} taps, the link {link.cfg.paths}")
        y = state.output.y
        fmat = taps_frequency_matrix(link.num_subcarriers, len(self.powers), y.dtype, y.device)
        return {"y": y, "state": state, "link": link, "fmat": fmat, "perm": state.perm,
                "batch": y.shape[0]}

    def init(self, ctx, generator):
        return self._randn((ctx["batch"], 3, *self.image_shape), generator, ctx["y"].device)

    def _sigma2(self, t: int) -> torch.Tensor:
        a = float(self._ac[t])
        return (a * self.powers + 1.0 - a).float()

    def init_aux(self, ctx, generator):
        # h_{T-1} ~ CN(0, σ²): real and imaginary parts N(0, σ²/2); stored as real [B, L, 2].
        sd = (self._sigma2(len(self._ac) - 1) / 2).sqrt()
        z = self._randn((ctx["batch"], len(self.powers), 2), generator, ctx["y"].device)
        return {"h": z * sd.to(z.device)[None, :, None]}

    def _h0(self, h_t: torch.Tensor, t: int) -> torch.Tensor:
        a = float(self._ac[t])
        gain = (a**0.5 * self.powers.float() / self._sigma2(t)).to(h_t.device)
        return h_t * gain[None, :, None]

    def aux_x0(self, aux, t):
        return {"h": torch.view_as_complex(self._h0(aux["h"], t).contiguous())}

    def aux_step(self, aux, grads, t, s, i, n, generator):
        h_t = aux["h"].detach()
        h0 = self._h0(h_t, t)
        a_t = float(self._ac[t])
        a_s = float(self._ac[s]) if s >= 0 else 1.0
        beta = 1.0 - a_t / a_s
        mean = a_s**0.5 * beta / (1 - a_t) * h0 + (1 - beta) ** 0.5 * (1 - a_s) / (1 - a_t) * h_t
        if s >= 0:
            var = beta * (1 - a_s) / (1 - a_t)
            mean = mean + (var / 2) ** 0.5 * self._randn(h_t.shape, generator, h_t.device)
        return {"h": mean - self.lr_h * (1 - i / n) * grads["h"]}

    def learning_rate(self, i, n):
        return self.lr * (1 - i / n)

    def transmitted_grid(self, x0_hat: torch.Tensor, ctx: dict) -> torch.Tensor:
        """``G(x̂0)``: ``[B, F, S, M]`` complex grid (pilots included) the transmitter would send."""
        x = self.encode(x0_hat).to(ctx["y"].dtype)
        x = x * torch.rsqrt(x.abs().square().mean(-1, keepdim=True).clamp_min(1e-12))
        if ctx["perm"] is not None:
            x = x[..., ctx["perm"]]
        # the link's own mapper (+ clipping): the same grid transmit() sends
        return ctx["link"]._tx_grid(x)

    def guide(self, x0_hat, ctx, step):
        h = ctx["aux_x0"]["h"].to(ctx["y"].dtype)
        hf = h @ ctx["fmat"].T  # [B, M]
        y_sim = hf[:, None, None, :] * self.transmitted_grid(x0_hat, ctx)
        return self.zeta * self.residual_norm(y_sim, ctx)  # raw grid: ctx has no weight

    def extras(self, res, ctx):
        real = ctx["state"].realization
        h_true = real.extra.get("a") if real is not None else None
        if h_true is None:
            return {}
        h_hat = torch.view_as_complex(res.aux["h"].contiguous()).to(h_true.dtype)
        nmse = (h_hat - h_true).abs().square().sum(-1) / h_true.abs().square().sum(-1).clamp_min(1e-12)
        return {"channel_nmse": nmse.cpu()}
