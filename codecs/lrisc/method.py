"""LRISC as an image method (``kind: lrisc``).

::

    images --g_a--> y --hyperprior--> I_g bits per group --Q(β·I_g)--> k_g  (side info, digital)
      y, k --f_e(SNR)--> s [B,G,K_max] --pack the sent symbols--> x [B, Σk] (+ filler, not counted)
      --AnalogChain (power per image, interleaver, AWGN / fading / OFDM + equalisation)--> y_eq, no_eff
      --unpack with k--> r --f_d(SNR)--> ŷ --decoder: diffusion (latent-conditioned DDIM) | synthesis (g_s)--> images

**Channel uses.** Per image ``Σ_g k_g`` data symbols plus the side information, ``G·⌈log2 L⌉``
bits sent digitally at ``side_bits_per_symbol`` bits per channel use (default 1: QPSK with a
rate-1/2 code); the side information is assumed to arrive without error (the receiver must know
the lengths to parse the symbols; a failed side channel would be an outage of the image, which
this idealisation leaves out — its cost in channel uses is counted, its error rate is not).
``channel_uses`` in ``results.csv`` is this per-image total (it varies with ``length: adaptive``;
``fixed_total`` keeps every image at or below the budget ``N = ρ·3HW``). ``data_symbols`` and
``side_symbols`` give the two parts.

**On the air.** The chain is built for ``G·K_max`` symbols (the most an image can send); the
image's ``Σk`` symbols come first, unit power per image, and the remaining positions carry a
fixed unit-modulus filler so that the chain's per-image normalisation leaves the sent symbols'
power at exactly 1 (the filler stands for "nothing sent" and is not counted; on AWGN it does not
interact with the data). ``overhead`` and airtime follow that frame.
"""

from __future__ import annotations

import functools

import torch

from ..base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from .allocation import allocate, calibrate_beta, side_bits
from .model import DOWNSAMPLING
# settings, weight paths and the static plan are torch-free (the validator's); re-exported here
from .settings import (EMBEDDED_DECODER, EMBEDDED_DIR, EMBEDDED_WEIGHTS, LRISCSettings,  # noqa: F401
                       decoder_dir, lrisc_plan, weights_path)

__all__ = ["LRISCSettings", "LRISCMethod", "EMBEDDED_DIR", "EMBEDDED_WEIGHTS", "EMBEDDED_DECODER", "load_model"]

@functools.lru_cache(maxsize=4)
def load_model(path: str, device: str = "cpu"):
    """The :class:`~.model.LRISC` at ``path`` (cached per process: every sweep point shares it)."""
    from .model import load_lrisc

    return load_lrisc(path, device).requires_grad_(False)


@functools.lru_cache(maxsize=4)
def _load_decoder(path: str, device: str = "cpu"):
    from .decoder import load_decoder

    return load_decoder(path, device)


def _filler(n: int, device) -> torch.Tensor:
    """``[n]`` fixed unit-modulus QPSK filler (a pattern, not a draw from a run's generator)."""
    bits = torch.randint(0, 2, (n, 2), generator=torch.Generator().manual_seed(0x1F15C))
    return (torch.complex(bits[:, 0] * 2.0 - 1, bits[:, 1] * 2.0 - 1) / 2**0.5).to(device)


class LRISCMethod(ImageMethod):
    """``kind: lrisc`` (module notes).

    :param config: :class:`LRISCSettings` (or the engine's config model extending it)
    :param point: operating point (``csnr_db``, ``cbr``, ``image_shape``, ``link``)
    :param model: a ready :class:`~.model.LRISC` (tests); default: ``config.model``
    """

    extra_columns = ("channel_uses", "data_symbols", "side_symbols", "side_bits", "decoder")

    def __init__(self, config, point: OperatingPoint, model=None):
        super().__init__(config, point)
        from linksim.phy.chains import AnalogChain

        self.model = model if model is not None else load_model(str(weights_path(config.model)), point.device)
        h, w = point.image_shape
        self.layout = self.plan(self.model, config, point)
        self.num_groups, self.side, self.data_budget = self.layout
        self.table = self.model.table
        self.num_chain = self.num_groups * self.table.max
        self.beta = None
        if config.length == "adaptive":
            pool = self.model.config.extra.get("calibration_bits")
            if not pool:
                raise ValueError("this LRISC model has no calibration_bits (adaptive lengths need them); use length: fixed_total")
            self.beta = calibrate_beta(torch.tensor(pool), self.data_budget / self.num_groups, self.table)
        self.chain = AnalogChain(point.link, self.num_chain, device=point.device)
        self.decoder = None
        if config.decoder == "diffusion":
            self.decoder = _load_decoder(str(decoder_dir(config.diffusion)), point.device)

    #: ``(G, N_side, N − N_side)`` at a point (:func:`linksim.codecs.lrisc.settings.lrisc_plan`)
    plan = staticmethod(lrisc_plan)

    def grid(self):
        from linksim.phy.chains import grid_info

        return grid_info(self.point.link, self.num_chain)

    @classmethod
    def run_info(cls, config) -> dict:
        """run.json states the decoder (and its DDIM steps), the length mode and the side channel."""
        return {"decoder": config.decoder, "num_steps": config.num_steps if config.decoder == "diffusion" else None,
                "length": config.length, "side_bits_per_symbol": config.side_bits_per_symbol}

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    # ---- layout ------------------------------------------------------------------------------
    def _order(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(order [B, G·K_max], sent [B, G·K_max] bool)``: sent symbols first, in (group, index) order."""
        sent = self.model.mask(lengths).flatten(1).bool()
        order = torch.argsort((~sent).to(torch.int8), dim=1, stable=True)
        return order, sent

    def lengths(self, y: torch.Tensor) -> torch.Tensor:
        """``[B, G]`` symbols per group of the latent ``y`` (the side information), per ``config.length``."""
        idx = allocate(self.model.information(y), self.table, self.config.length, self.data_budget, self.beta)
        return self.table.tensor(y.device)[idx]

    # ---- transmitter -------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TxSignal:
        images = images.to(self.point.device)
        y = self.model.analysis(images)
        k = self.lengths(y)
        b = images.shape[0]
        snr = torch.full((b, 1), float(self.point.csnr_db), device=images.device)
        s = self.model.jscc_encode(y, k, snr).flatten(1)
        order, sent = self._order(k)
        x = s.gather(1, order)
        used = sent.sum(dim=1)
        pos = torch.arange(x.shape[1], device=x.device)[None]
        x = torch.where(pos < used[:, None], x, _filler(x.shape[1], x.device)[None].to(x.dtype))
        return TxSignal(x=x, meta={"lengths": k, "data_symbols": used})

    @torch.no_grad()
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        # the lengths are the digitally sent side information (module notes)
        return RxSignal(y=y, state=state, tx_meta={"lengths": tx.meta["lengths"]})

    # ---- receiver ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        k = rx.tx_meta["lengths"]
        b = k.shape[0]
        order, sent = self._order(k)
        r = torch.zeros_like(rx.y).scatter(1, order, rx.y)
        used = sent.sum(dim=1)
        if self.config.use_no_eff:
            no_eff = torch.zeros_like(rx.state.no_eff).scatter(1, order, rx.state.no_eff)
            mean_no = (no_eff * sent).sum(dim=1) / used.clamp_min(1)
            snr = -10.0 * torch.log10(mean_no.clamp_min(1e-12))
            snr = torch.where(used > 0, snr, torch.full_like(snr, float(self.point.csnr_db)))
        else:
            snr = torch.full((b,), float(self.point.csnr_db), device=r.device)
        h, w = self.point.image_shape
        d = DOWNSAMPLING
        r = r.reshape(b, self.num_groups, self.table.max)
        y_hat = self.model.jscc_decode(r, k, snr.reshape(b, 1).float(), (h // d, w // d))
        nfe = None
        if self.decoder is None:
            images = self.model.synthesis(y_hat).clamp(0, 1)
        else:
            gen = generator
            if gen is not None and gen.device != y_hat.device:
                gen = torch.Generator(device=y_hat.device).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            images = self.decoder.decode(y_hat, snr.float(), self.num_steps, self.config.eta, gen)
            nfe = self.num_steps
        data = used.to(torch.int64)
        return Decoded(images=images, nfe=nfe, extras={
            "channel_uses": (data + self.side).tolist(), "data_symbols": data.tolist(), "side_symbols": self.side,
            "side_bits": side_bits(self.num_groups, self.table), "decoder": self.config.decoder})
