"""ADJSCC: attention deep joint source-channel coding (Xu, Ai, Chen, Wang, Chen, "Wireless image
transmission using deep source channel coding with attention modules", IEEE TCSVT 2021).

The encoder maps an image to ``C`` real feature maps at 1/4 resolution; the reals are paired into
complex channel symbols, normalised to unit average power **per image** and sent; the decoder maps
the (equalised) received symbols back to an image. Attention feature (AF) modules let one model
serve a range of CSNRs.

Symbol layout (documented because receivers such as DiffCom invert it): the latent ``z``
``[B, C, H/4, W/4]`` is flattened row-major per image to ``[B, C*(H/4)*(W/4)]`` and *adjacent* reals
are paired, ``s_k = z_{2k} + j z_{2k+1}`` (the pairing of the public ADJSCC code, so external
weights see the same arrangement). Then ``x = s / sqrt(mean_k |s_k|^2)`` per image.

CBR: ``N = C*(H/4)*(W/4)/2`` complex symbols for ``3*H*W`` reals, so ``rho = C/96`` at any size:
C=2 -> 1/48, C=4 -> 1/24, C=6 -> 1/16 (DESIGN.md §3).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from linksim.weights import verify_shipped

from .layers import GDN, AFModule
# the CBR arithmetic and the weight paths are torch-free (the validator uses them); re-exported here
from .geometry import ADJSCC_DOWNSAMPLING, EMBEDDED_DIR, embedded_path, latent_channels, parse_cbr  # noqa: F401

__all__ = [
    "ADJSCCConfig", "ADJSCC", "ADJSCCEncoder", "ADJSCCDecoder", "awgn_channel", "parse_cbr",
    "save_model", "load_native", "load_embedded", "embedded_path",
]

DOWNSAMPLING = ADJSCC_DOWNSAMPLING  # two stride-2 convolutions


@dataclass(frozen=True)
class ADJSCCConfig:
    """Static description of an ADJSCC model (saved as JSON next to its weights).

    :param channels: ``C``, latent channels (CBR ``C/96``)
    :param filters: ``F``, width of the hidden layers (256 in the paper)
    :param rescale_received: the decoder expects received symbols scaled back to the encoder's
        raw latent amplitude (the public ADJSCC checkpoints were trained that way); native
        models decode the unit-power symbols directly (``False``)
    """

    channels: int = 2
    filters: int = 256
    rescale_received: bool = False

    def __post_init__(self):
        if self.channels < 1 or self.filters < 1:
            raise ValueError(f"channels and filters must be >= 1; got {self.channels}, {self.filters}")

    @classmethod
    def from_json(cls, path: str | Path) -> "ADJSCCConfig":
        data = json.loads(Path(path).read_text())
        known = {k: data[k] for k in ("channels", "filters", "rescale_received") if k in data}
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


class ADJSCCEncoder(nn.Module):
    """Image ``[B, 3, H, W]`` + CSNR ``[B, 1]`` dB -> latent ``[B, C, H/4, W/4]`` (real).

    conv 9x9/2 -> conv 5x5/2 -> 3x conv 5x5/1; GDN after every conv, PReLU and an AF module after
    the first four.
    """

    def __init__(self, channels: int, filters: int):
        super().__init__()
        chans = [3, filters, filters, filters, filters, channels]
        kernels, strides = [9, 5, 5, 5, 5], [2, 2, 1, 1, 1]
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], kernels[i], strides[i], padding=kernels[i] // 2)
            for i in range(5)
        )
        self.norms = nn.ModuleList(GDN(chans[i + 1]) for i in range(5))
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(4))
        self.af = nn.ModuleList(AFModule(filters) for _ in range(4))

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for i in range(4):
            x = self.af[i](self.acts[i](self.norms[i](self.convs[i](x))), snr_db)
        return self.norms[4](self.convs[4](x))


class ADJSCCDecoder(nn.Module):
    """Latent ``[B, C, H/4, W/4]`` + SNR ``[B, 1]`` dB -> image ``[B, 3, H, W]`` in ``[0, 1]``.

    3x transposed conv 5x5/1 -> transposed conv 5x5/2 -> transposed conv 9x9/2, each followed by
    IGDN, PReLU and an AF module; then reflection-padded conv 7x7 to RGB and a sigmoid.
    """

    def __init__(self, channels: int, filters: int):
        super().__init__()
        chans = [channels, filters, filters, filters, filters, filters]
        kernels, strides = [5, 5, 5, 5, 9], [1, 1, 1, 2, 2]
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(
                chans[i], chans[i + 1], kernels[i], strides[i], padding=kernels[i] // 2,
                output_padding=strides[i] - 1,
            )
            for i in range(5)
        )
        self.norms = nn.ModuleList(GDN(filters, inverse=True) for _ in range(5))
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(5))
        self.af = nn.ModuleList(AFModule(filters) for _ in range(5))
        self.out_conv = nn.Conv2d(filters, 3, 7)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for i in range(5):
            z = self.af[i](self.acts[i](self.norms[i](self.convs[i](z))), snr_db)
        return torch.sigmoid(self.out_conv(F.pad(z, (3, 3, 3, 3), mode="reflect")))


def _per_image(value, batch: int, device, dtype=torch.float32) -> torch.Tensor:
    """A float / [B] / [B, 1] tensor as a ``[B, 1]`` tensor."""
    t = torch.as_tensor(value, dtype=dtype, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    t = t.reshape(-1)
    if t.numel() != batch:
        raise ValueError(f"expected a scalar or {batch} per-image values; got shape {tuple(t.shape)}")
    return t.reshape(batch, 1)


class ADJSCC(nn.Module):
    """ADJSCC encoder + decoder with the symbol mapping of DESIGN.md §3.

    :param config: :class:`ADJSCCConfig` (or pass ``channels``/``filters`` keywords)
    """

    #: spatial down-sampling of the encoder (CBR = C / (6 * downsampling**2)); subclasses change it
    downsampling = DOWNSAMPLING

    def __init__(self, config: ADJSCCConfig | None = None, **kwargs):
        super().__init__()
        self.config = config if config is not None else ADJSCCConfig(**kwargs)
        self.encoder = ADJSCCEncoder(self.config.channels, self.config.filters)
        self.decoder = ADJSCCDecoder(self.config.channels, self.config.filters)

    # ---- rate arithmetic ---------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.config.channels

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(C, H/4, W/4)``; raises ValueError unless ``H`` and ``W`` are multiples of 4."""
        d = self.downsampling
        if height % d or width % d or height <= 0 or width <= 0:
            raise ValueError(
                f"{type(self).__name__} needs image sides that are positive multiples of {d}; got {height}x{width}"
            )
        return self.channels, height // d, width // d

    def num_symbols(self, height: int, width: int) -> int:
        """Complex channel symbols per image, ``C*(H/4)*(W/4)/2``."""
        c, h, w = self.latent_shape(height, width)
        if (c * h * w) % 2:
            raise ValueError(f"C*(H/4)*(W/4) = {c * h * w} is odd; it cannot be paired into complex symbols")
        return c * h * w // 2

    def cbr(self, height: int, width: int) -> float:
        """Channel bandwidth ratio ``N / (3*H*W)`` (= ``C/96``)."""
        return self.num_symbols(height, width) / (3 * height * width)

    @classmethod
    def channels_for_cbr(cls, cbr) -> int:
        """Latent channels ``C = 96 * cbr`` for a CBR (float, Fraction or ``"a/b"``)."""
        return latent_channels(cbr, cls.downsampling, cls.__name__)

    # ---- transmitter ---------------------------------------------------------------------------
    def latent(self, images: torch.Tensor, csnr_db) -> torch.Tensor:
        """The encoder's real latent ``[B, C, H/4, W/4]`` before pairing and normalisation."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W]; got {tuple(images.shape)}")
        self.num_symbols(images.shape[-2], images.shape[-1])
        snr = _per_image(csnr_db, images.shape[0], images.device, images.dtype)
        return self.encoder(images, snr)

    def encode(self, images: torch.Tensor, csnr_db, return_scale: bool = False):
        """Images -> unit-power complex channel symbols. Differentiable (autograd).

        :param images: ``[B, 3, H, W]`` float in ``[0, 1]``, ``H`` and ``W`` multiples of 4
        :param csnr_db: CSNR [dB] the AF modules adapt to: float or ``[B]`` tensor
        :param return_scale: also return the RMS amplitude of the raw complex latent ``[B]`` (the
            transmit normaliser; only models with ``rescale_received`` need it at the receiver)
        :return: ``[B, N]`` complex64 (complex128 for a float64 model) with ``mean_k |x_k|^2 = 1`` for every image (and the scale)
        """
        s = self.pair(self.latent(images, csnr_db))
        scale = torch.sqrt(s.abs().square().mean(dim=1).clamp_min(1e-12))
        x = s / scale[:, None]
        return (x, scale) if return_scale else x

    # ---- receiver ------------------------------------------------------------------------------
    def decode(
        self,
        y_eq: torch.Tensor,
        csnr_db,
        no_eff: torch.Tensor | None = None,
        image_size: tuple[int, int] | None = None,
        tx_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Equalised symbols -> images in ``[0, 1]``. Differentiable (autograd).

        :param y_eq: ``[B, N]`` complex, equalised (and de-interleaved) received symbols
        :param csnr_db: the nominal CSNR [dB], float or ``[B]``; fed to the AF modules
        :param no_eff: optional ``[B, N]`` effective noise variance per equalised symbol. When
            given, the AF modules get the *effective* SNR ``-10 log10(mean_k no_eff)`` per image
            instead of ``csnr_db`` (after fading and equalisation the noise the decoder sees is
            larger than ``N0``; on AWGN both coincide)
        :param image_size: ``(H, W)``; ``None`` assumes a square image
        :param tx_scale: ``[B]`` transmit normaliser from :meth:`encode` (``return_scale=True``);
            required by models with ``rescale_received`` (public checkpoints), ignored otherwise
        :return: ``[B, 3, H, W]`` float32
        """
        if y_eq.dim() != 2 or not torch.is_complex(y_eq):
            raise ValueError(f"y_eq must be [B, N] complex; got {tuple(y_eq.shape)} {y_eq.dtype}")
        b, n = y_eq.shape
        c = self.channels
        if image_size is None:
            side = math.isqrt(2 * n // c) * self.downsampling
            image_size = (side, side)
        h, w = image_size
        if self.num_symbols(h, w) != n:
            raise ValueError(f"{n} symbols do not match a {h}x{w} image at C={c} ({self.num_symbols(h, w)} expected)")
        if no_eff is not None:
            snr = -10.0 * torch.log10(no_eff.float().reshape(b, -1).mean(dim=1).clamp_min(1e-12))
            snr = snr.reshape(b, 1)
        else:
            snr = _per_image(csnr_db, b, y_eq.device, self.decoder.out_conv.weight.dtype)
        if self.config.rescale_received:
            if tx_scale is None:
                raise ValueError("this model decodes rescaled symbols: pass tx_scale from encode(..., return_scale=True)")
            y_eq = y_eq * tx_scale.reshape(b, 1)
        dtype = self.decoder.out_conv.weight.dtype
        z = self.unpair(y_eq, h // self.downsampling, w // self.downsampling).to(dtype)
        return self.decoder(z, snr)

    # ---- real latent <-> complex symbols (DESIGN.md §3) ------------------------------------------
    def pair(self, z: torch.Tensor) -> torch.Tensor:
        """Real latent ``[B, C, h, w]`` -> complex ``[B, C·h·w/2]``: consecutive reals of the
        flattened latent form one symbol (ADJSCC's order; a subclass may pair otherwise)."""
        pairs = z.reshape(z.shape[0], -1, 2)
        return torch.complex(pairs[..., 0], pairs[..., 1])

    def unpair(self, y: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Inverse of :meth:`pair`: complex ``[B, N]`` -> real latent ``[B, C, h, w]``."""
        return torch.view_as_real(y).reshape(y.shape[0], self.channels, h, w)

    def forward(self, images: torch.Tensor, channel_fn: Callable, csnr_db) -> torch.Tensor:
        """Encode -> ``channel_fn`` -> decode (training and quick evaluation).

        :param channel_fn: ``(x [B, N] complex, csnr_db [B]) -> y_eq`` or ``(y_eq, no_eff)``
        :param csnr_db: float or ``[B]`` tensor [dB]
        :return: reconstructions ``[B, 3, H, W]``
        """
        b = images.shape[0]
        snr = _per_image(csnr_db, b, images.device).reshape(b)
        x, scale = self.encode(images, snr, return_scale=True)
        out = channel_fn(x, snr)
        y, no_eff = out if isinstance(out, tuple) else (out, None)
        return self.decode(y, snr, no_eff=no_eff, image_size=images.shape[-2:], tx_scale=scale)


def awgn_channel(generator: torch.Generator | None = None) -> Callable:
    """A ``channel_fn`` for :meth:`ADJSCC.forward`: AWGN with ``CN(0, N0)``, ``N0 = 10^(-CSNR/10)``.

    :param generator: draws the noise (on the symbols' device); ``None`` uses torch's global RNG
    """

    def channel(x: torch.Tensor, csnr_db: torch.Tensor) -> torch.Tensor:
        no = 10.0 ** (-csnr_db.float().reshape(-1, 1) / 10.0)
        noise = torch.randn(x.shape + (2,), generator=generator, device=x.device)
        return x + torch.sqrt(no / 2) * torch.view_as_complex(noise)

    return channel


# ---- weights I/O -------------------------------------------------------------------------------


def save_model(model: ADJSCC, weights_path: str | Path, dtype: torch.dtype = torch.float32, extra: dict | None = None) -> None:
    """Write ``model`` as safetensors (``dtype``) plus ``<same name>.json`` with its config.

    :param extra: additional JSON fields (training provenance, measured PSNR, ...)
    """
    from safetensors.torch import save_file

    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights_path), metadata={"format": "pt", "model": model.config.to_dict().get("arch", "adjscc")})
    meta = {**model.config.to_dict(), **(extra or {})}
    weights_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_native(weights_path: str | Path, model_cls: type | None = None, config_cls: type | None = None,
                device: str | torch.device = "cpu"):
    """Load a model saved by :func:`save_model` (weights + ``.json`` config) as ``model_cls`` (default
    :class:`ADJSCC` with :class:`ADJSCCConfig`), eval mode, float32. Files of any architecture:
    :func:`linksim.codecs.jscc.checkpoint.load_model` (dispatches on the ``arch`` of the config)."""
    from safetensors.torch import load_file

    weights_path = Path(weights_path)
    cfg_path = weights_path.with_suffix(".json")
    for p in (weights_path, cfg_path):
        if not p.is_file():
            raise FileNotFoundError(f"ADJSCC weights file missing: {p}")
    verify_shipped(weights_path)
    model = (model_cls or ADJSCC)((config_cls or ADJSCCConfig).from_json(cfg_path))
    state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def load_embedded(cbr, device: str | torch.device = "cpu") -> ADJSCC:
    """The small ADJSCC trained by the project (32x32 crops, AWGN, CSNR 0–14 dB) for a CBR.

    :param cbr: ``1/48`` (C=2) or ``1/24`` (C=4); float, Fraction or ``"a/b"``
    :raises FileNotFoundError: naming the missing file (e.g. a CBR without embedded weights)
    """
    path = embedded_path(cbr)
    if not path.is_file():
        have = sorted(p.name for p in EMBEDDED_DIR.glob("adjscc_c*.safetensors"))
        raise FileNotFoundError(
            f"no embedded ADJSCC weights for CBR {cbr}: {path} does not exist (available: {', '.join(have) or 'none'})"
        )
    return load_native(path, device=device)
