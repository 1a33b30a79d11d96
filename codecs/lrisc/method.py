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
from ..separation import FALLBACK_GREY
from .allocation import allocate, calibrate_beta, side_bits
from .model import DOWNSAMPLING
# settings, weight paths and the static plan are torch-free (the validator's); re-exported here
from .settings import (EMBEDDED_DECODER, EMBEDDED_DIR, EMBEDDED_WEIGHTS, SIDE_CRC, LRISCSettings,  # noqa: F401
                       decoder_dir, ldpc_side_code, lrisc_plan, weights_path)

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


@functools.lru_cache(maxsize=8)
@torch.no_grad()
def training_photo_bits(model, image_shape: tuple[int, int], device="cpu") -> torch.Tensor:
    """``[P·G]`` group bits of the model's training photos (the embedded corpus minus its ``holdout``),
    resized and centre-cropped to ``image_shape`` as the scenario's images are: the ``adaptive``
    calibration set (never an image the model was evaluated on). Cached per model object and size:
    every sweep point of a run shares it (the models are cached too, :func:`load_model`)."""
    from ..images import EMBEDDED_HOLDOUT, EMBEDDED_PHOTOS, embedded_array, resize_center_crop, to_tensor

    holdout = set(model.config.extra.get("holdout", EMBEDDED_HOLDOUT))
    h, w = image_shape
    x = torch.stack([resize_center_crop(to_tensor(embedded_array(n)), h, w) for n in EMBEDDED_PHOTOS
                     if n not in holdout]).to(device)
    return model.information(model.analysis(x)).flatten().cpu()


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

    extra_columns = ("channel_uses", "data_symbols", "side_symbols", "side_bits", "side_ok", "decoder")

    def __init__(self, config, point: OperatingPoint, model=None):
        super().__init__(config, point)
        from linksim.phy.chains import AnalogChain

        self.model = model if model is not None else load_model(str(weights_path(config.model)), point.device)
        h, w = point.image_shape
        self.layout = self.plan(self.model, config, point)
        self.num_groups, self.side, self.data_budget = self.layout
        self.table = self.model.table
        # side_channel: ldpc puts the coded lengths in the frame, before the data (module notes)
        self.side_code = None
        if config.side_channel == "ldpc":
            from linksim.phy.chains import DigitalChain
            from linksim.phy.grid import LinkConfig

            k, n, _ = ldpc_side_code(side_bits(self.num_groups, self.table), config.side_bits_per_symbol)
            # only its CRC + LDPC + QPSK are used (the symbols travel in the analog frame): a code-only
            # chain, whose AWGN link is never called
            self.side_code = DigitalChain(LinkConfig(kind="awgn"), 2, k, n, 1, crc=SIDE_CRC, device=point.device)
        self.side_in_frame = self.side if self.side_code is not None else 0
        self.num_chain = self.side_in_frame + self.num_groups * self.table.max
        self.beta = None
        if config.length == "adaptive":
            self.beta = calibrate_beta(self._calibration_pool(), self.data_budget / self.num_groups, self.table)
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
                "length": config.length, "side_bits_per_symbol": config.side_bits_per_symbol,
                "calibration": config.calibration if config.length == "adaptive" else None}

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    def _calibration_pool(self) -> torch.Tensor:
        """Group bits β is calibrated on (``config.calibration``, :class:`LRISCSettings`): the model's
        training photos at this point's image size, or its stored training-crop pool."""
        if self.config.calibration == "crops":
            pool = self.model.config.extra.get("calibration_bits")
            if not pool:
                raise ValueError("this LRISC model has no calibration_bits (calibration: crops needs them); "
                                 "use calibration: photos or length: fixed_total")
            return torch.tensor(pool)
        return training_photo_bits(self.model, self.point.image_shape, self.point.device)

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
        if self.side_code is not None:
            x = torch.cat([self.side_code.encode(self._length_bits(k)).to(x.dtype), x], dim=1)
        return TxSignal(x=x, meta={"lengths": k, "data_symbols": used})

    def _length_bits(self, k: torch.Tensor) -> torch.Tensor:
        """``[B, G]`` lengths -> ``[B, G·⌈log2 L⌉]`` bits of their table indices (MSB first)."""
        idx = torch.searchsorted(self.table.tensor(k.device), k.float().contiguous())
        nb = self.table.bits_per_group
        shifts = torch.arange(nb - 1, -1, -1, device=k.device)
        return ((idx[..., None] >> shifts) & 1).flatten(1).float()

    def _bits_lengths(self, bits: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_length_bits`; an index past the table (a corrupt word) is clamped."""
        nb = self.table.bits_per_group
        b = bits.round().long().reshape(bits.shape[0], -1, nb)
        idx = (b << torch.arange(nb - 1, -1, -1, device=b.device)).sum(-1).clamp(max=len(self.table) - 1)
        return self.table.tensor(bits.device)[idx]

    @torch.no_grad()
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        # side_channel: ideal hands the lengths over error-free (counted, not simulated); ldpc sent them
        # in the frame (the receiver decodes them from y)
        meta = {"lengths": tx.meta["lengths"]} if self.side_code is None else {
            "sent_data_symbols": tx.meta["data_symbols"]}  # accounting only: what occupied the channel
        return RxSignal(y=y, state=state, tx_meta=meta)

    # ---- receiver ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        y, no_eff_all = rx.y, rx.state.no_eff
        side_ok = None
        if self.side_code is None:
            k = rx.tx_meta["lengths"]
        else:
            s0 = self.side_in_frame
            n = self.side_code.n
            llr = self.side_code.demapper(y[:, :s0], no_eff_all[:, :s0])[:, :n].reshape(y.shape[0], 1, n)
            bits, ok = self.side_code.decode(llr)
            side_ok = ok[:, 0].cpu()
            k = self._bits_lengths(bits).to(y.device)
            k = torch.where(side_ok.to(y.device)[:, None], k, torch.zeros_like(k))  # lost: nothing to parse
            y, no_eff_all = y[:, s0:], no_eff_all[:, s0:]
        b = k.shape[0]
        order, sent = self._order(k)
        r = torch.zeros_like(y).scatter(1, order, y)
        used = sent.sum(dim=1)
        if self.config.use_no_eff:
            no_eff = torch.zeros_like(no_eff_all).scatter(1, order, no_eff_all)
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
        extras = {"channel_uses": (data + self.side).tolist(), "data_symbols": data.tolist(),
                  "side_symbols": self.side, "side_bits": side_bits(self.num_groups, self.table),
                  "decoder": self.config.decoder}
        outage = None
        if side_ok is not None:
            # a lost side word: the receiver knows neither the lengths nor what was sent; the data
            # symbols still occupied the channel, counted at the transmitter's lengths
            sent_data = rx.tx_meta.get("sent_data_symbols")
            extras["side_ok"] = side_ok
            outage = ~side_ok
            images = torch.where(outage.to(images.device)[:, None, None, None], torch.full_like(images, FALLBACK_GREY),
                                 images)
            if sent_data is not None:
                extras["channel_uses"] = (sent_data.cpu() + self.side).tolist()
                extras["data_symbols"] = sent_data.cpu().tolist()
        return Decoded(images=images, nfe=nfe, outage=outage, extras=extras)
