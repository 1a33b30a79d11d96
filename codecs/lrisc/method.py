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
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from .allocation import allocate, calibrate_beta, side_bits, side_symbols
from .model import DOWNSAMPLING

__all__ = ["LRISCSettings", "LRISCMethod", "EMBEDDED_DIR", "EMBEDDED_WEIGHTS", "EMBEDDED_DECODER", "load_model"]

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_WEIGHTS = EMBEDDED_DIR / "lrisc.safetensors"
EMBEDDED_DECODER = EMBEDDED_DIR / "ddpm"


class LRISCSettings(BaseModel):
    """Settings of ``kind: lrisc`` (strict).

    :param model: ``embedded`` or an ``.safetensors`` file written by the LRISC training (``.json`` beside it)
    :param decoder: ``diffusion`` (the latent-conditioned DDIM decoder, the paper's) or
        ``synthesis`` (the plain synthesis transform ``g_s``: isolates the diffusion's contribution)
    :param diffusion: ``embedded`` or a directory written by stage 3 of the training
    :param length: ``adaptive`` (one calibrated β: the mean over images meets the budget) or
        ``fixed_total`` (per-image β: no image exceeds the budget)
    :param num_steps: DDIM steps of the diffusion decoder (= NFE)
    :param eta: DDIM stochasticity (0: deterministic given the initial noise)
    :param side_bits_per_symbol: information bits per channel use of the digital side channel
    :param use_no_eff: the JSCC decoder (and the diffusion's SNR embedding) get the effective SNR
        after equalisation, ``-10·log10(mean no_eff)`` over the sent symbols; identical on AWGN
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "embedded"
    decoder: Literal["diffusion", "synthesis"] = "diffusion"
    diffusion: str = "embedded"
    length: Literal["adaptive", "fixed_total"] = "adaptive"
    num_steps: int = Field(20, ge=1)
    eta: float = Field(0.0, ge=0, le=1)
    side_bits_per_symbol: float = Field(1.0, gt=0)
    use_no_eff: bool = True


def _weights_path(spec: str) -> Path:
    return EMBEDDED_WEIGHTS if spec == "embedded" else Path(spec).expanduser()


def _decoder_dir(spec: str) -> Path:
    return EMBEDDED_DECODER if spec == "embedded" else Path(spec).expanduser()


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

        self.model = model if model is not None else load_model(str(_weights_path(config.model)), point.device)
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
            self.decoder = _load_decoder(str(_decoder_dir(config.diffusion)), point.device)

    @staticmethod
    def plan(model, config, point: OperatingPoint) -> tuple[int, int, int]:
        """``(G, N_side, N − N_side)``; ``ValueError`` when the budget cannot carry the side information."""
        h, w = point.image_shape
        g = model.num_groups(h, w)
        side = side_symbols(g, model.table, config.side_bits_per_symbol)
        n = point.num_symbols
        if n - side < 1:
            raise ValueError(f"CBR {point.cbr} gives {n} channel uses per {h}x{w} image, not more than the side "
                             f"information's {side} ({side_bits(g, model.table)} bits at {config.side_bits_per_symbol:g} "
                             f"bits per channel use); raise the CBR or side_bits_per_symbol")
        return g, side, n - side

    @classmethod
    def check(cls, config, point: OperatingPoint) -> None:
        """Weights exist, CSNR + CBR + image shape given, sides fit the groups, the budget carries the
        side information, and the frame fits the OFDM grid."""
        if point.csnr_db is None or point.cbr is None or point.image_shape is None:
            raise ValueError("lrisc needs csnr_db and cbr sweep axes and a data: section")
        super().check(config, point)
        path = _weights_path(config.model)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise ValueError(f"LRISC weights {path} (+ .json) do not exist")
        if config.decoder == "diffusion":
            d = _decoder_dir(config.diffusion)
            for name in ("config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json", "training.json"):
                if not (d / name).is_file():
                    raise ValueError(f"LRISC diffusion decoder file missing: {d / name}")
        model = load_model(str(path), "cpu")
        g, _, _ = cls.plan(model, config, point)
        from linksim.phy.chains import grid_info

        grid_info(point.link, g * model.table.max)

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
