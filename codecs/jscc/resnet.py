"""ResNet JSCC with x16 down-sampling: the stage-1 JSCC of DiffJSCC (Yang, Liu, Wang, Kim).

DiffJSCC keeps a deep-JSCC transmitter unchanged and refines its decode at the receiver. Its
stage 1 (``../shared/reference/receivers.md``, "DiffJSCC") is a ResNet JSCC that down-samples by
16, with SNR modulation layers and per-image power normalisation, trained with the SNR uniform in
0–14 dB. The symbol mapping, power normalisation and decoding interface are those of
:class:`~linksim.codecs.jscc.adjscc.ADJSCC` (this class subclasses it), so every receiver built on
ADJSCC (DiffCom, HiFi-DiffCom, the analog chain) works with it unchanged.

Layout::

    encoder: 4 x [ResBlock stride 2 (F) -> ResBlock (F) -> SNR modulation]  -> conv3x3 -> C
    decoder: conv3x3 C -> F -> 4 x [ResBlock (F) -> ResBlock up x2 (F) -> SNR modulation]
             -> conv3x3 -> 3, sigmoid

The residual blocks are the usual ones of learned image compression (Cheng et al. 2020: conv 3x3
stride 2 / sub-pixel up-sampling, LeakyReLU, GDN / IGDN, 1x1 shortcut). The SNR modulation layer is
the attention-feature module of ADJSCC (:class:`~linksim.codecs.jscc.layers.AFModule`): a channel
gate computed from ``[snr_db, avgpool(features)]``; one model serves every SNR.

CBR: the latent ``[C, H/16, W/16]`` is paired into ``N = C·H·W/512`` complex symbols for ``3·H·W``
reals, so ``ρ = C/1536``: C = 2 -> 1/768, 4 -> 1/384, 8 -> 1/192, 16 -> 1/96 (the paper's CBRs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .adjscc import ADJSCC, load_native
from .layers import GDN, AFModule
from .geometry import EMBEDDED_DIR, RESNET_DOWNSAMPLING, embedded_resnet_path  # noqa: F401 (re-exported)

__all__ = ["ResNetJSCCConfig", "ResNetJSCC", "ResBlock", "ResBlockDown", "ResBlockUp", "EMBEDDED_RESNET_DIR",
           "embedded_resnet_path", "load_embedded_resnet"]

EMBEDDED_RESNET_DIR = EMBEDDED_DIR


@dataclass(frozen=True)
class ResNetJSCCConfig:
    """Static description of a :class:`ResNetJSCC` (saved as JSON next to its weights).

    :param channels: ``C``, latent channels (CBR ``C/1536``)
    :param filters: ``F``, hidden width
    :param rescale_received: as :class:`~linksim.codecs.jscc.adjscc.ADJSCCConfig` (native: ``False``)
    """

    channels: int = 4
    filters: int = 64
    rescale_received: bool = False
    arch: str = "resnet"

    def __post_init__(self):
        if self.channels < 1 or self.filters < 1:
            raise ValueError(f"channels and filters must be >= 1; got {self.channels}, {self.filters}")

    @classmethod
    def from_json(cls, path: str | Path) -> "ResNetJSCCConfig":
        data = json.loads(Path(path).read_text())
        return cls(**{k: data[k] for k in ("channels", "filters", "rescale_received") if k in data})

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    """``x + conv3x3(LeakyReLU(conv3x3(x)))`` with a LeakyReLU after: ``[B, F, H, W]`` -> same."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class ResBlockDown(nn.Module):
    """Stride-2 residual block: ``[B, Cin, H, W]`` -> ``[B, F, H/2, W/2]`` (GDN on the main path)."""

    def __init__(self, cin: int, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, ch, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.gdn = GDN(ch)
        self.skip = nn.Conv2d(cin, ch, 1, stride=2)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gdn(self.conv2(self.act(self.conv1(x)))) + self.skip(x)


class ResBlockUp(nn.Module):
    """Sub-pixel x2 residual block: ``[B, F, H, W]`` -> ``[B, Cout, 2H, 2W]`` (IGDN on the main path)."""

    def __init__(self, ch: int, cout: int):
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(ch, cout * 4, 3, padding=1), nn.PixelShuffle(2))
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)
        self.igdn = GDN(cout, inverse=True)
        self.skip = nn.Sequential(nn.Conv2d(ch, cout * 4, 1), nn.PixelShuffle(2))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.igdn(self.conv(self.act(self.up(x)))) + self.skip(x)


class ResNetEncoder(nn.Module):
    """Image ``[B, 3, H, W]`` + SNR ``[B, 1]`` dB -> latent ``[B, C, H/16, W/16]`` (real)."""

    def __init__(self, channels: int, filters: int):
        super().__init__()
        self.down = nn.ModuleList(ResBlockDown(3 if i == 0 else filters, filters) for i in range(4))
        self.res = nn.ModuleList(ResBlock(filters) for _ in range(4))
        self.snr = nn.ModuleList(AFModule(filters) for _ in range(4))
        self.out_conv = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for down, res, mod in zip(self.down, self.res, self.snr):
            x = mod(res(down(x)), snr_db)
        return self.out_conv(x)


class ResNetDecoder(nn.Module):
    """Latent ``[B, C, H/16, W/16]`` + SNR ``[B, 1]`` dB -> image ``[B, 3, H, W]`` in ``[0, 1]``."""

    def __init__(self, channels: int, filters: int):
        super().__init__()
        self.in_conv = nn.Conv2d(channels, filters, 3, padding=1)
        self.res = nn.ModuleList(ResBlock(filters) for _ in range(4))
        self.up = nn.ModuleList(ResBlockUp(filters, filters) for _ in range(4))
        self.snr = nn.ModuleList(AFModule(filters) for _ in range(4))
        self.out_conv = nn.Conv2d(filters, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(z)
        for res, up, mod in zip(self.res, self.up, self.snr):
            x = mod(up(res(x)), snr_db)
        return torch.sigmoid(self.out_conv(x))


class ResNetJSCC(ADJSCC):
    """The DiffJSCC stage-1 JSCC: ADJSCC's symbol mapping with a x16 ResNet encoder/decoder.

    :param config: :class:`ResNetJSCCConfig` (or ``channels``/``filters`` keywords)

    >>> m = ResNetJSCC(channels=4, filters=16)
    >>> m.num_symbols(64, 64), m.cbr(64, 64) == 1 / 384, ResNetJSCC.channels_for_cbr("1/96")
    (32, True, 16)
    """

    downsampling = RESNET_DOWNSAMPLING

    def __init__(self, config: ResNetJSCCConfig | None = None, **kwargs):
        nn.Module.__init__(self)
        self.config = config if config is not None else ResNetJSCCConfig(**kwargs)
        self.encoder = ResNetEncoder(self.config.channels, self.config.filters)
        self.decoder = ResNetDecoder(self.config.channels, self.config.filters)


def load_embedded_resnet(cbr, device: str | torch.device = "cpu") -> ResNetJSCC:
    """The small ResNet JSCC trained by the project for ``cbr`` (1/384: C=4, 1/96: C=16).

    :raises FileNotFoundError: no embedded model for that CBR (names the file and what exists)
    :raises ValueError: the CBR is not ``k/1536``
    """
    path = embedded_resnet_path(cbr)
    if not path.is_file():
        have = sorted(p.name for p in EMBEDDED_RESNET_DIR.glob("resnet_c*.safetensors"))
        raise FileNotFoundError(f"no embedded ResNet JSCC for CBR {cbr}: {path} does not exist "
                                f"(available: {', '.join(have) or 'none'})")
    return load_native(path, ResNetJSCC, ResNetJSCCConfig, device)
