"""The LRISC networks: nonlinear transform + hyperprior, and the adaptive-length SNR-adaptive JSCC.

::

    image x [B,3,H,W] --g_a (3x conv5/2 + GDN)--> y [B,M,H/8,W/8]
        y --h_a--> z [B,Nz,H/16,W/16] --round--> ẑ --h_s--> σ [B,M,H/8,W/8]
        I_g = Σ_{i in group g} −log2 p(round(y_i) | σ_i)          (bits per group, .allocation)
        k_g = Q(β·I_g)                                              (lengths, side information)
    y, k --f_e (convs + AF(SNR), pixel-unshuffle to groups, 1x1 convs)--> s [B,G,K_max] complex
        first k_g symbols of every group, unit power per image -> channel -> r [B,G,K_max] (zeros unsent)
    r, k --f_d (1x1 convs + AF(SNR), pixel-shuffle, convs)--> ŷ [B,M,H/8,W/8]
        ŷ --g_s (3x deconv5/2 + IGDN)--> x̂  (decoder: synthesis)
        ŷ --latent-conditioned diffusion (.decoder)--> x̂  (decoder: diffusion)

A group is ``p x p`` latent positions (``p = group``, a ``8p x 8p`` pixel patch), groups in
row-major order; within a group, symbol ``j`` is sent iff ``j < k_g``. The JSCC sees the
length of each group (``k_g / K_max`` as an input plane) so it learns to put what matters first.
The SNR adaptation is ADJSCC's attention-feature module (:class:`~linksim.codecs.jscc.layers.AFModule`,
fed the CSNR in dB) after every hidden layer of ``f_e`` and ``f_d``: one model for 0–20 dB.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from linksim.weights import verify_shipped

from ..jscc.layers import GDN, AFModule
from .allocation import LengthTable
from .entropy import FactorizedPrior, GaussianConditional, bits, quantize
from .settings import DOWNSAMPLING, group_multiple, num_groups  # down-sampling of g_a (z at twice that) and the group geometry: torch-free (the validator's)

__all__ = ["LRISCConfig", "LRISC", "save_lrisc", "load_lrisc", "DOWNSAMPLING"]


@dataclass(frozen=True)
class LRISCConfig:
    """Static description of an LRISC model (saved as JSON next to its weights).

    :param filters: ``N``, hidden width of the transforms
    :param latent: ``M``, channels of ``y``
    :param hyper: ``Nz``, channels of ``z``
    :param jscc_filters: hidden width of ``f_e`` / ``f_d``
    :param group: ``p``, latent positions per group side
    :param lengths: the allowed group lengths [complex symbols] (:class:`~.allocation.LengthTable`)
    """

    filters: int = 64
    latent: int = 32
    hyper: int = 32
    jscc_filters: int = 128
    group: int = 2
    lengths: tuple[int, ...] = (0, 4, 8, 12, 16, 24, 32, 48)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "lengths", tuple(int(v) for v in self.lengths))
        LengthTable(self.lengths)
        if min(self.filters, self.latent, self.hyper, self.jscc_filters, self.group) < 1:
            raise ValueError("LRISC widths and group must be >= 1")
        if 2 * self.lengths[-1] > self.latent * self.group**2 * 4:
            raise ValueError(f"max group length {self.lengths[-1]} is far above the group's {self.latent * self.group**2} reals")

    @property
    def table(self) -> LengthTable:
        return LengthTable(self.lengths)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["lengths"] = list(self.lengths)
        return d


def _conv(cin, cout, k, s=1):
    return nn.Conv2d(cin, cout, k, s, padding=k // 2)


def _deconv(cin, cout, k, s=2):
    return nn.ConvTranspose2d(cin, cout, k, s, padding=k // 2, output_padding=s - 1)


class _AFStack(nn.Module):
    """``conv -> PReLU -> AF(snr)`` blocks (the SNR-adaptive body of ``f_e`` / ``f_d``)."""

    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.acts = nn.ModuleList(nn.PReLU() for _ in convs)
        self.af = nn.ModuleList(AFModule(c.out_channels) for c in convs)

    def forward(self, x, snr_db):
        for conv, act, af in zip(self.convs, self.acts, self.af):
            x = af(act(conv(x)), snr_db)
        return x


class LRISC(nn.Module):
    """Transform, hyperprior and adaptive-length JSCC of LRISC (module notes).

    :param config: :class:`LRISCConfig`
    """

    def __init__(self, config: LRISCConfig | None = None, **kwargs):
        super().__init__()
        c = self.config = config if config is not None else LRISCConfig(**kwargs)
        n, m, nz, f, p = c.filters, c.latent, c.hyper, c.jscc_filters, c.group
        self.g_a = nn.Sequential(_conv(3, n, 5, 2), GDN(n), _conv(n, n, 5, 2), GDN(n), _conv(n, m, 5, 2))
        self.g_s = nn.Sequential(_deconv(m, n, 5), GDN(n, inverse=True), _deconv(n, n, 5), GDN(n, inverse=True),
                                 _deconv(n, 3, 5))
        self.h_a = nn.Sequential(_conv(m, nz, 3), nn.ReLU(), _conv(nz, nz, 5, 2))
        self.h_s = nn.Sequential(_deconv(nz, nz, 5), nn.ReLU(), _conv(nz, m, 3))
        self.z_prior = FactorizedPrior(nz)
        self.y_model = GaussianConditional()
        kmax = c.lengths[-1]
        self.enc_body = _AFStack([_conv(m, f, 3), _conv(f, f, 3)])
        self.enc_group = _AFStack([_conv(f * p * p + 1, f, 1)])
        self.enc_out = _conv(f, 2 * kmax, 1)
        self.dec_group = _AFStack([_conv(2 * kmax + 1, f, 1), _conv(f, f * p * p, 1)])
        self.dec_body = _AFStack([_conv(f, f, 3)])
        self.dec_out = _conv(f, m, 3)

    # ---- geometry ----------------------------------------------------------------------------
    @property
    def table(self) -> LengthTable:
        return self.config.table

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (``z`` at /16 and whole groups of ``8p`` pixels)."""
        return group_multiple(self.config.group)

    def num_groups(self, height: int, width: int) -> int:
        """``G = (H/8p)·(W/8p)``; ``ValueError`` unless the sides are multiples of :attr:`multiple`."""
        return num_groups(self.config.group, height, width)

    # ---- transform + hyperprior --------------------------------------------------------------
    def analysis(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> ``y`` ``[B, M, H/8, W/8]``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W]; got {tuple(images.shape)}")
        self.num_groups(images.shape[-2], images.shape[-1])
        return self.g_a(images * 2 - 1)

    def synthesis(self, y_hat: torch.Tensor) -> torch.Tensor:
        """``ŷ`` -> image ``[B, 3, H, W]`` (not clamped: training's MSE sees the raw output)."""
        return (self.g_s(y_hat) + 1) / 2

    def likelihoods(self, y: torch.Tensor, mode: str = "round", generator: torch.Generator | None = None):
        """``(y_q, p(y_q), z_q, p(z_q))`` with ``mode`` ``round`` (test) or ``noise`` (training)."""
        z = self.h_a(y.abs())  # the scales depend on |y| (Ballé 2018)
        z_q = quantize(z, mode, generator)
        scales = F.softplus(self.h_s(z_q))
        y_q = quantize(y, mode, generator)
        return y_q, self.y_model(y_q, scales), z_q, self.z_prior(z_q)

    def group_bits(self, element_bits: torch.Tensor) -> torch.Tensor:
        """``[B, M, h, w]`` bits per element -> ``[B, G]`` bits per group (row-major groups)."""
        p = self.config.group
        return F.avg_pool2d(element_bits, p).sum(dim=1).flatten(1) * (p * p)

    @torch.no_grad()
    def information(self, y: torch.Tensor) -> torch.Tensor:
        """Estimated information ``I_g`` [bits] of every group of ``y``: ``[B, G]`` (test mode)."""
        _, p_y, _, _ = self.likelihoods(y, "round")
        return self.group_bits(bits(p_y))

    # ---- JSCC --------------------------------------------------------------------------------
    def _length_plane(self, lengths: torch.Tensor, y_shape) -> torch.Tensor:
        p = self.config.group
        gh, gw = y_shape[-2] // p, y_shape[-1] // p
        k = lengths.to(torch.float32) / self.table.max
        return k.reshape(-1, 1, gh, gw)

    def jscc_encode(self, y: torch.Tensor, lengths: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """``y`` + lengths ``[B, G]`` (symbols) + SNR ``[B, 1]`` dB -> unit-power symbols ``[B, G, K_max]``.

        Symbols ``j >= k_g`` are zero; the sent ones have ``mean |s|^2 = 1`` per image.
        """
        p = self.config.group
        h = F.pixel_unshuffle(self.enc_body(y, snr_db), p)
        h = self.enc_group(torch.cat((h, self._length_plane(lengths, y.shape).to(h.dtype)), 1), snr_db)
        out = self.enc_out(h)  # [B, 2 K, gh, gw]
        b, kk = out.shape[0], out.shape[1] // 2
        s = out.flatten(2).transpose(1, 2).reshape(b, -1, kk, 2)
        s = torch.complex(s[..., 0].float(), s[..., 1].float())
        mask = self.mask(lengths)
        s = s * mask
        power = s.abs().square().sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp_min(1)
        return s / power.clamp_min(1e-12).sqrt()[:, None, None]

    def mask(self, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, G, K_max]`` float: 1 where symbol ``j < k_g`` is sent."""
        j = torch.arange(self.table.max, device=lengths.device)
        return (j < lengths[..., None]).to(torch.float32)

    def jscc_decode(self, r: torch.Tensor, lengths: torch.Tensor, snr_db: torch.Tensor, latent_hw) -> torch.Tensor:
        """Received ``r`` ``[B, G, K_max]`` complex (zeros where unsent) -> ``ŷ`` ``[B, M, h, w]``."""
        p = self.config.group
        h_lat, w_lat = latent_hw
        gh, gw = h_lat // p, w_lat // p
        b = r.shape[0]
        dtype = self.dec_out.weight.dtype
        re = torch.view_as_real(r * self.mask(lengths)).to(dtype)  # [B, G, K, 2]
        x = re.reshape(b, gh, gw, -1).permute(0, 3, 1, 2)
        x = torch.cat((x, self._length_plane(lengths, (h_lat, w_lat)).to(dtype)), 1)
        x = F.pixel_shuffle(self.dec_group(x, snr_db), p)
        return self.dec_out(self.dec_body(x, snr_db))

    def forward_jscc(self, images: torch.Tensor, lengths: torch.Tensor, csnr_db: torch.Tensor,
                     generator: torch.Generator | None = None):
        """Training pass over AWGN: ``(x̂, ŷ, y)`` (``x̂`` by the synthesis transform)."""
        y = self.analysis(images)
        snr = csnr_db.reshape(-1, 1).to(y.dtype)
        s = self.jscc_encode(y, lengths, snr)
        no = 10.0 ** (-snr / 10.0)
        noise = torch.view_as_complex(torch.randn(s.shape + (2,), generator=generator, device=s.device))
        r = s + (no[..., None] / 2).sqrt() * noise
        y_hat = self.jscc_decode(r, lengths, snr, y.shape[-2:])
        return self.synthesis(y_hat), y_hat, y


# ---- weights I/O -------------------------------------------------------------------------------
def save_lrisc(model: LRISC, path: str | Path, dtype: torch.dtype = torch.float16, extra: dict | None = None) -> Path:
    """``model`` as safetensors (``dtype``) + ``<same name>.json`` (config and ``extra``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "model": "lrisc"})
    path.with_suffix(".json").write_text(json.dumps({"config": model.config.to_dict(), **(extra or {})}, indent=1) + "\n")
    return path


def load_lrisc(path: str | Path, device: str | torch.device = "cpu") -> LRISC:
    """A model written by :func:`save_lrisc` (float32, eval); the JSON's other fields in ``config.extra``.

    :raises FileNotFoundError: naming the missing file
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"LRISC weights file missing: {p}")
    meta = json.loads(meta_path.read_text())
    extra = {k: v for k, v in meta.items() if k != "config"}
    model = LRISC(LRISCConfig(**meta["config"], extra=extra))
    model.load_state_dict({k: v.float() for k, v in load_file(str(verify_shipped(path))).items()}, strict=True)
    return model.to(device).eval()
