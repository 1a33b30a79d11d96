"""The published DiffJSCC stage-1 JSCC (its "deepjscc_cnn"), so users can run the paper's checkpoints.

The DiffJSCC authors' stage 1 is a pix2pix-style ResNet JSCC, not the Cheng-style one the project
trains (:mod:`.resnet`); to load their weights the layers must be theirs. Architecture (from the
published model configuration: ``ngf`` 64, ``max_ngf`` 384, 4 down-samplings, 4 residual blocks in
encoder and decoder, batch norm, ``C`` 4 at CBR 1/384 and 16 at 1/96, SNR 0–14 dB)::

    encoder: reflect-pad 3, conv7x7 3->ngf, BN, ReLU
             4 x [conv3x3 stride 2, BN, ReLU]            (ngf -> 2ngf -> ... capped at max_ngf)
             n x [ResBlock (zero pad) -> SNR modulation]
             conv3x3 -> C                                 (with bias)
    decoder: conv3x3 C -> max_ngf                         (no norm, no activation)
             n x [ResBlock (reflect pad) -> SNR modulation]
             4 x [convT3x3 stride 2, BN, ReLU]            (halving down to ngf)
             reflect-pad 2, conv5x5 -> 3, sigmoid

ResBlock: ``x + BN(conv(ReLU(BN(conv(x)))))``. SNR modulation: from ``[mean_hw(f), csi]`` two MLPs
give a sigmoid gate ``g`` and an offset ``a``; output ``f·g + a`` (``csi`` = SNR in dB for the AWGN
models; the Rayleigh models add ``Re h, Im h`` — not supported here, as linksim's encoder does not
see the channel draw). Symbols: the first ``C/2`` latent channels are the real parts, the last
``C/2`` the imaginary parts, per-image unit power (the paper's code; it differs from ADJSCC's
pairing of neighbouring reals, hence :meth:`PublishedCNNJSCC.pair`).

Checkpoints: a full DiffJSCC checkpoint (PyTorch Lightning ``.ckpt``: ``state_dict`` with the
stage 1 under ``preprocess_model.``) or a stage-1 checkpoint (keys ``E.*`` / ``G.*``). Keys are
mapped onto this module by :func:`map_published_keys`; the LPIPS network the authors keep inside
the module is ignored. Use: ``{kind: jscc, model: /path/to/checkpoint.ckpt}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .adjscc import ADJSCC

__all__ = ["PublishedCNNConfig", "PublishedCNNJSCC", "map_published_keys", "published_stage1_state",
           "load_published_diffjscc"]


@dataclass(frozen=True)
class PublishedCNNConfig:
    """Shape of a published DiffJSCC stage 1 (read from its checkpoint by :func:`load_published_diffjscc`)."""

    channels: int = 4
    ngf: int = 64
    max_ngf_e: int = 384
    max_ngf_d: int = 384
    blocks_e: int = 4
    blocks_d: int = 4
    rescale_received: bool = False  # the paper's decoder sees the unit-power symbols (ADJSCC's interface)


class _Modulation(nn.Module):
    """``f·sigmoid(MLP_g([mean f, csi])) + MLP_a([mean f, csi])``: ``[B, F, H, W]``, ``[B, E]`` -> ``[B, F, H, W]``."""

    def __init__(self, ch: int, extend: int = 1):
        super().__init__()
        self.gate1, self.gate2 = nn.Linear(ch + extend, ch), nn.Linear(ch, ch)
        self.add1, self.add2 = nn.Linear(ch + extend, ch), nn.Linear(ch, ch)

    def forward(self, f: torch.Tensor, csi: torch.Tensor) -> torch.Tensor:
        s = torch.cat([f.mean(dim=(-2, -1)), csi.to(f.dtype)], dim=-1)
        g = torch.sigmoid(self.gate2(F.relu(self.gate1(s))))
        a = self.add2(F.relu(self.add1(s)))
        return f * g[..., None, None] + a[..., None, None]


class _ResBlock(nn.Module):
    """``x + BN(conv3x3(ReLU(BN(conv3x3(x)))))``, zero or reflect padding, bias-free convs."""

    def __init__(self, ch: int, reflect: bool):
        super().__init__()
        self.reflect = reflect
        pad = 0 if reflect else 1
        self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=pad, bias=False), nn.BatchNorm2d(ch)
        self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=pad, bias=False), nn.BatchNorm2d(ch)

    def _pad(self, x):
        return F.pad(x, (1, 1, 1, 1), mode="reflect") if self.reflect else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(self._pad(x))))
        return x + self.bn2(self.conv2(self._pad(h)))


class _ConvBN(nn.Module):
    def __init__(self, conv: nn.Module, ch: int):
        super().__init__()
        self.conv, self.bn = conv, nn.BatchNorm2d(ch)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _widths(ngf: int, cap: int, n: int = 4) -> list[int]:
    return [min(ngf * 2**i, cap) for i in range(n + 1)]


class PublishedCNNEncoder(nn.Module):
    """Image ``[B, 3, H, W]`` + CSI ``[B, 1]`` (SNR dB) -> latent ``[B, C, H/16, W/16]``."""

    def __init__(self, cfg: PublishedCNNConfig):
        super().__init__()
        w = _widths(cfg.ngf, cfg.max_ngf_e)
        self.stem = _ConvBN(nn.Conv2d(3, cfg.ngf, 7, bias=False), cfg.ngf)
        self.downs = nn.ModuleList(_ConvBN(nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1, bias=False), w[i + 1])
                                   for i in range(4))
        self.blocks = nn.ModuleList(_ResBlock(w[4], reflect=False) for _ in range(cfg.blocks_e))
        self.mods = nn.ModuleList(_Modulation(w[4]) for _ in range(cfg.blocks_e))
        self.proj = nn.Conv2d(w[4], cfg.channels, 3, padding=1)

    def forward(self, x: torch.Tensor, csi: torch.Tensor) -> torch.Tensor:
        f = self.stem(F.pad(x, (3, 3, 3, 3), mode="reflect"))
        for down in self.downs:
            f = down(f)
        for block, mod in zip(self.blocks, self.mods):
            f = mod(block(f), csi)
        return self.proj(f)


class PublishedCNNDecoder(nn.Module):
    """Latent ``[B, C, H/16, W/16]`` + CSI ``[B, 1]`` -> image ``[B, 3, H, W]`` in ``[0, 1]``."""

    def __init__(self, cfg: PublishedCNNConfig):
        super().__init__()
        top = cfg.max_ngf_d
        self.in_conv = nn.Conv2d(cfg.channels, top, 3, padding=1, bias=False)
        self.blocks = nn.ModuleList(_ResBlock(top, reflect=True) for _ in range(cfg.blocks_d))
        self.mods = nn.ModuleList(_Modulation(top) for _ in range(cfg.blocks_d))
        ins = [min(cfg.ngf * 2 ** (4 - i), top) for i in range(4)]
        outs = [min(cfg.ngf * 2 ** (3 - i), top) for i in range(4)]
        self.ups = nn.ModuleList(
            _ConvBN(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1, bias=False), b)
            for a, b in zip(ins, outs))
        self.out_conv = nn.Conv2d(cfg.ngf, 3, 5)

    def forward(self, z: torch.Tensor, csi: torch.Tensor) -> torch.Tensor:
        f = self.in_conv(z)
        for block, mod in zip(self.blocks, self.mods):
            f = mod(block(f), csi)
        for up in self.ups:
            f = up(f)
        return torch.sigmoid(self.out_conv(F.pad(f, (2, 2, 2, 2), mode="reflect")))


class PublishedCNNJSCC(ADJSCC):
    """The published DiffJSCC stage 1 behind ADJSCC's interface (so DiffJSCC, DiffCom, HiFi-DiffCom and
    the analog chain run on it unchanged). CBR ``C/1536``.

    >>> m = PublishedCNNJSCC(PublishedCNNConfig(channels=4, ngf=8, max_ngf_e=16, max_ngf_d=16, blocks_e=1, blocks_d=1))
    >>> m.num_symbols(64, 64), m.cbr(64, 64) == 1 / 384
    (32, True)
    """

    downsampling = 16

    def __init__(self, config: PublishedCNNConfig | None = None, **kwargs):
        nn.Module.__init__(self)
        self.config = config if config is not None else PublishedCNNConfig(**kwargs)
        if self.config.channels % 2:
            raise ValueError(f"C must be even (C/2 real + C/2 imaginary channels); got {self.config.channels}")
        self.encoder = PublishedCNNEncoder(self.config)
        self.decoder = PublishedCNNDecoder(self.config)

    def pair(self, z: torch.Tensor) -> torch.Tensor:
        half = z.shape[1] // 2
        return torch.complex(z[:, :half], z[:, half:]).reshape(z.shape[0], -1)

    def unpair(self, y: torch.Tensor, h: int, w: int) -> torch.Tensor:
        s = y.reshape(y.shape[0], self.channels // 2, h, w)
        return torch.cat([s.real, s.imag], dim=1)


# published key -> ours; ``{i}`` groups are computed per pattern (see map_published_keys)
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_LIN = r"(weight|bias)"


def _rules():
    """(regex on the published key, function of the match -> our key)."""
    return [
        (rf"E\.net\.1\.weight$", lambda m: "encoder.stem.conv.weight"),
        (rf"E\.net\.2\.{_BN}$", lambda m: f"encoder.stem.bn.{m[1]}"),
        # down-sampling i: conv at net index 4 + 3i, BN at 5 + 3i (ReLU between)
        (r"E\.net\.(\d+)\.weight$", lambda m: _down(int(m[1]), "conv", "weight")),
        (rf"E\.net\.(\d+)\.{_BN}$", lambda m: _down(int(m[1]), "bn", m[2])),
        # zero-padded ResBlock: [conv, BN, ReLU, conv, BN]
        (r"E\.res_list\.(\d+)\.conv_block\.(0|1|3|4)\.(\w+)$",
         lambda m: _res("encoder", int(m[1]), {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2"}[m[2]], m[3])),
        (rf"E\.res_list\.(\d+)\.model_(multi|add)\.(0|2)\.{_LIN}$", lambda m: _mod("encoder", m)),
        (rf"E\.projection\.{_LIN}$", lambda m: f"encoder.proj.{m[1]}"),
        (r"G\.mask_conv\.weight$", lambda m: "decoder.in_conv.weight"),
        # reflect-padded ResBlock: [pad, conv, BN, ReLU, pad, conv, BN]
        (r"G\.res_list\.(\d+)\.conv_block\.(1|2|5|6)\.(\w+)$",
         lambda m: _res("decoder", int(m[1]), {"1": "conv1", "2": "bn1", "5": "conv2", "6": "bn2"}[m[2]], m[3])),
        (rf"G\.res_list\.(\d+)\.model_(multi|add)\.(0|2)\.{_LIN}$", lambda m: _mod("decoder", m)),
        # up-sampling i: convT at model index 3i, BN at 3i + 1; then pad (12), conv5x5 (13)
        (rf"G\.model\.(\d+)\.(\w+)$", lambda m: _up(int(m[1]), m[2])),
    ]


def _down(idx: int, part: str, name: str) -> str | None:
    i, r = divmod(idx - 4, 3)
    if idx < 4 or not 0 <= i < 4 or r != (0 if part == "conv" else 1):
        return None
    return f"encoder.downs.{i}.{part}.{name}"


def _res(side: str, idx: int, part: str, name: str) -> str | None:
    return None if idx % 2 else f"{side}.blocks.{idx // 2}.{part}.{name}"


def _mod(side: str, m) -> str | None:
    idx = int(m[1])
    if idx % 2 == 0:
        return None
    layer = {("multi", "0"): "gate1", ("multi", "2"): "gate2", ("add", "0"): "add1", ("add", "2"): "add2"}[m[2], m[3]]
    return f"{side}.mods.{idx // 2}.{layer}.{m[4]}"


def _up(idx: int, name: str) -> str | None:
    if idx == 13 and name in ("weight", "bias"):
        return f"decoder.out_conv.{name}"
    i, r = divmod(idx, 3)
    if i >= 4 or r == 2:
        return None
    return f"decoder.ups.{i}.conv.{name}" if r == 0 else f"decoder.ups.{i}.bn.{name}"


def map_published_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stage-1 keys of the published layout (``E.*``, ``G.*``) -> this module's keys.

    :raises ValueError: a key of the stage-1 networks that fits no rule (names it)
    """
    rules = [(re.compile(p), f) for p, f in _rules()]
    out = {}
    for key, value in state.items():
        for pat, fn in rules:
            m = pat.match(key)
            if m and (ours := fn(m)) is not None:
                out[ours] = value
                break
        else:
            raise ValueError(f"published DiffJSCC stage-1 key {key!r} fits no known layer of its 'deepjscc_cnn'")
    return out


def _stage1_state(obj: dict) -> dict[str, torch.Tensor]:
    """The ``E.*`` / ``G.*`` tensors of a full (``preprocess_model.``) or stage-1 checkpoint."""
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    obj = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    prefix = "preprocess_model." if any(k.startswith("preprocess_model.E.") for k in obj) else ""
    return {k[len(prefix):]: v for k, v in obj.items()
            if k.startswith(prefix + "E.") or k.startswith(prefix + "G.")}


def read_checkpoint(path: Path) -> dict:
    try:  # mmap: a full DiffJSCC checkpoint holds Stable Diffusion too (GBs); only stage 1 is read
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def published_stage1_state(path: str | Path) -> dict[str, torch.Tensor] | None:
    """The stage-1 tensors of ``path`` when it has the published DiffJSCC layout, else ``None``
    (read once: the caller hands them to :func:`load_published_diffjscc`)."""
    try:
        state = _stage1_state(read_checkpoint(Path(path)))
    except Exception:  # noqa: BLE001 - not a readable torch checkpoint: not ours to claim
        return None
    return state if "E.net.1.weight" in state and "G.mask_conv.weight" in state else None


def load_published_diffjscc(path: str | Path, device: str | torch.device = "cpu",
                            state: dict[str, torch.Tensor] | None = None) -> PublishedCNNJSCC:
    """The stage-1 JSCC of a published DiffJSCC checkpoint, eval mode, float32.

    :param state: its stage-1 tensors when already read (:func:`published_stage1_state`)
    :raises ValueError: not that layout, a Rayleigh-CSI model, or keys that do not fit (named)
    """
    path = Path(path)
    if state is None:
        state = _stage1_state(read_checkpoint(path))
    if "E.projection.weight" not in state or "G.mask_conv.weight" not in state:
        raise ValueError(f"{path}: no DiffJSCC stage-1 weights (E.* / G.*, or preprocess_model.E.* / .G.*)")
    proj, stem, top = state["E.projection.weight"], state["E.net.1.weight"], state["G.mask_conv.weight"]
    blocks = lambda side: len({k.split(".")[2] for k in state if k.startswith(f"{side}.res_list.")}) // 2  # noqa: E731
    extend = state["E.res_list.1.model_multi.0.weight"].shape[1] - proj.shape[1]
    if extend != 1:
        raise ValueError(f"{path}: a Rayleigh-CSI DiffJSCC stage 1 (CSI of {extend} values: SNR, Re h, Im h) is not "
                         "supported: linksim's JSCC encoder does not see the channel draw; use an AWGN checkpoint")
    cfg = PublishedCNNConfig(channels=proj.shape[0], ngf=stem.shape[0], max_ngf_e=proj.shape[1],
                             max_ngf_d=top.shape[0], blocks_e=blocks("E"), blocks_d=blocks("G"))
    model = PublishedCNNJSCC(cfg)
    mapped = {k: v.float() if v.is_floating_point() else v for k, v in map_published_keys(state).items()}
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: published DiffJSCC stage 1 does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.to(device).eval()
