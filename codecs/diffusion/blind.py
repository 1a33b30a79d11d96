"""Blind-DiffCom: joint posterior sampling of the image and the multipath taps, no channel estimate.

Pilot-free, as the paper ("without channel estimation"): the receiver sees only the received
*data* resource elements ``Y_data [B, N]`` (un-equalised; the link's pilot REs, if any, never
enter) and models them as ``Y_data = H_data(h) ⊙ X(x) + N`` where

- ``X(x)`` = what the data REs carry: JSCC encoder -> unit power per image -> the stored
  interleaver -> clipping when configured
  (:meth:`~linksim.phy.chains.ChannelState.transmitted`);
- ``H(h)[k] = Σ_l h_l exp(−j2π (k − M/2) l / M)``: the frequency response of ``L``
  sample-spaced taps on the centred subcarriers (the convention of
  :func:`linksim.phy.multipath.frequency_response`), constant over frames and OFDM symbols;
  ``H_data`` is it on each data RE's subcarrier.

It therefore runs on ``channel.pilot_symbols: 0``. ``pilot_aided=True`` (a linksim variant, not
the paper) adds the known pilot REs to the measurement (the whole grid ``Y`` against
``H ⊙ G(x)``, pilots included): 256 pilot REs alone pin 8 taps, so its numbers are not
Blind-DiffCom's.

The taps get their own reverse process with the prior ``h_l ~ CN(0, p_l)`` (exponential PDP,
:func:`linksim.phy.multipath.pdp`; variance ``p_l/2`` per real part). Diffused with complex
noise ``CN(0, 1)`` on the image's schedule, ``h_t ~ CN(0, σ_t²)`` with
``σ_t² = ᾱ_t p_l + 1 − ᾱ_t``: the score is ``−h_t/σ_t²`` and Tweedie gives
``ĥ0 = √ᾱ_t p_l h_t / σ_t²`` analytically. ``x`` and ``h`` are updated jointly from
``ζ‖Y_data − H_data(ĥ0) ⊙ X(x̂0)‖₂``, with ``lr_x`` decaying linearly 1 -> 0 and ``lr_h``
0.2 -> 0 (published); the loop starts at ``t = T−1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .sampler import DiffusionReceiver, MeasurementContext
from .schedules import posterior_coefficients
from .settings import SUCCESS_NMSE  # the tap-NMSE success threshold (torch-free: the settings' default)

__all__ = ["SUCCESS_NMSE", "taps_frequency_matrix", "BlindContext", "BlindDiffCom"]


@dataclass
class BlindContext(MeasurementContext):
    """:class:`MeasurementContext` + what the tap model needs: the OFDM ``link``, ``fmat`` ``[M, L]``
    (taps -> frequency response) and ``sub`` ``[N]`` (the subcarrier of each data RE)."""

    link: Any = None
    fmat: Any = None
    sub: Any = None

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
    :param pilot_aided: also use the known pilot REs (linksim variant, not the paper's method)
    :param success_nmse: tap NMSE below which an image counts as a success
    :param kwargs: :class:`DiffusionReceiver` options (``zeta``, ``lr`` = initial ``lr_x``,
        ``num_steps``, ...)

    ``Decoded.extras``: ``channel_nmse`` ``[B]`` = ``‖ĥ − h‖²/‖h‖²`` of the taps (the prior
    mean ``ĥ = 0`` scores 1) and ``channel_success`` ``[B]`` (1.0 when ``channel_nmse <
    success_nmse``, else 0.0; its mean in ``summary.csv`` is the success ratio).
    """

    def __init__(self, prior, jscc, csnr_db: float, image_shape, powers, *, zeta: float = 1.0, lr: float = 1.0,
                 lr_h: float = 0.2, pilot_aided: bool = False, success_nmse: float = SUCCESS_NMSE, **kwargs):
        kwargs.pop("measurement", None)  # the raw received data REs by construction
        super().__init__(prior, jscc, csnr_db, image_shape, zeta=zeta, lr=lr, **kwargs)
        self.powers = torch.as_tensor(powers, dtype=torch.float64).cpu()
        self.lr_h = float(lr_h)
        self.pilot_aided = bool(pilot_aided)
        self.success_nmse = float(success_nmse)

    def prepare(self, rx, state) -> BlindContext:
        link = getattr(state, "link", None)
        if link is None or getattr(link, "cfg", None) is None or link.cfg.kind != "ofdm":
            raise ValueError("Blind-DiffCom needs an OFDM link with sample-spaced taps (link kind 'ofdm')")
        if len(self.powers) != link.cfg.paths:
            raise ValueError(f"prior has {len(self.powers)} taps, the link {link.cfg.paths}")
        if self.pilot_aided and link.grid().pilot_res == 0:
            raise ValueError("pilot_aided Blind-DiffCom needs pilots (channel.pilot_symbols >= 1)")
        grid = state.output.y
        y = grid if self.pilot_aided else state.received()
        fmat = taps_frequency_matrix(link.num_subcarriers, len(self.powers), y.dtype, y.device)
        # the subcarrier of each data RE, read off the link's own RE order (extract of an index grid)
        m = link.num_subcarriers
        sub = link.extract(torch.arange(m, device=y.device).expand(1, *grid.shape[1:]).to(grid.dtype))
        return BlindContext(y=y, state=state, link=link, fmat=fmat, sub=sub.real.long()[0])

    def init(self, ctx, generator):
        return self._randn((ctx.batch, 3, *self.image_shape), generator, ctx.y.device)

    def _sigma2(self, t: int) -> torch.Tensor:
        a = float(self._ac[t])
        return (a * self.powers + 1.0 - a).float()

    def init_aux(self, ctx, generator):
        # h_{T-1} ~ CN(0, σ²): real and imaginary parts N(0, σ²/2); stored as real [B, L, 2].
        sd = (self._sigma2(self.timesteps()[0]) / 2).sqrt()
        z = self._randn((ctx.batch, len(self.powers), 2), generator, ctx.y.device)
        return {"h": z * sd.to(z.device)[None, :, None]}

    def _h0(self, h_t: torch.Tensor, t: int) -> torch.Tensor:
        a = float(self._ac[t])
        gain = (a**0.5 * self.powers.float() / self._sigma2(t)).to(h_t.device)
        return h_t * gain[None, :, None]

    def aux_x0(self, aux, t):
        return {"h": torch.view_as_complex(self._h0(aux["h"], t).contiguous())}

    def aux_step(self, aux, grads, t, s, i, n, generator):
        h_t = aux["h"].detach()
        c0, ct, var = posterior_coefficients(float(self._ac[t]), float(self._ac[s]) if s >= 0 else 1.0)
        mean = c0 * self._h0(h_t, t) + ct * h_t
        if s < 0:  # last step: the unguided posterior mean (= ĥ0)
            return {"h": mean}
        mean = mean + (var / 2) ** 0.5 * self._randn(h_t.shape, generator, h_t.device)
        return {"h": mean - self.lr_h * (1 - i / n) * grads["h"]}

    def learning_rate(self, i, n):
        return self.lr * (1 - i / n)

    def simulate_measurement(self, x0_hat: torch.Tensor, h: torch.Tensor, ctx: MeasurementContext) -> torch.Tensor:
        """``H(h) ⊙ X(x̂0)``: ``[B, N]`` on the data REs (``pilot_aided``: the whole grid
        ``[B, F, S, M]`` with the pilots the transmitter sends)."""
        hf = h.to(ctx.y.dtype) @ ctx.fmat.T  # [B, M]
        state = ctx.state
        if self.pilot_aided:
            x = state._on_air(self.encode(x0_hat))
            return hf[:, None, None, :] * ctx.link._tx_grid(x)
        return hf[:, ctx.sub] * state.transmitted(self.encode(x0_hat))

    def guide(self, x0_hat, ctx, step):
        y_sim = self.simulate_measurement(x0_hat, ctx.aux_x0["h"], ctx)
        return self.zeta * self.residual_norm(y_sim, ctx)

    def extras(self, res, ctx):
        real = ctx.state.realization
        h_true = real.taps if real is not None else None
        if h_true is None:
            return {}
        h_hat = torch.view_as_complex(res.aux["h"].contiguous()).to(h_true.dtype)
        nmse = (h_hat - h_true).abs().square().sum(-1) / h_true.abs().square().sum(-1).clamp_min(1e-12)
        return {"channel_nmse": nmse.cpu(), "channel_success": (nmse < self.success_nmse).float().cpu()}
