"""GESCO's receiver network: FDS and a semantic diffusion UNet with SPADE group norm.

**FDS** (Fast Denoising Semantic block, Grassucci et al.): ``FDS(ŷ) = Pad(MaxPool3x3(AvgPool3x3(ŷ)))``
on the received one-hot maps of the *present* classes, then the absent classes re-inserted as
zero maps (the present-class list is side information). The average pool removes the
zero-mean channel noise, the max pool restores the extent of the (eroded) class regions; the
3x3 windows run with stride 1 and replicate padding (``Pad``) keeps the size.

**Semantic diffusion UNet** (SDM layout, Wang et al. 2022, which GESCO builds on): the encoder
blocks see only the noisy image ``x_t`` (plain residual blocks, GroupNorm); the middle and decoder
blocks use **SPADE group norm** — ``GroupNorm(affine=False)`` then ``x·(1 + γ(seg)) + β(seg)``,
with ``γ, β`` from ``conv3x3(label_nc -> hidden) + ReLU -> conv3x3`` on the label maps resized
(nearest) to the feature size. diffusers has no SPADE block (its UNet blocks condition on a
timestep / class embedding or cross-attention only, never on a spatial map in the norm), so this
module writes that block and the small UNet around it by hand; the timestep embedding
(``Timesteps`` sinusoidal + ``TimestepEmbedding`` MLP) and the schedulers are diffusers'.

The unconditional branch (classifier-free guidance) is the all-zero label map, as in SDM: training
replaces the map by zeros with probability ``label_dropout``.

Deviation (named): the paper's ADM learns the variance (``L_simple + 0.001 L_vlb``); the embedded
model predicts ε only and samples with the fixed posterior variance (``learn_sigma`` is not
offered), which a model this small trained for minutes on CPU supports far better.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..configs import StrictModel

__all__ = ["fds", "clean_up", "insert_absent", "SpadeGroupNorm", "SemanticUNet", "SemanticUNetConfig", "guided_eps"]


def fds(maps: torch.Tensor) -> torch.Tensor:
    """``Pad(MaxPool3x3(AvgPool3x3(maps)))``, stride 1, size kept.

    :param maps: ``[B, C, H, W]`` received (noisy) maps
    :return: ``[B, C, H, W]``
    """
    a = F.avg_pool2d(F.pad(maps, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return F.max_pool2d(F.pad(a, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


def clean_up(maps: torch.Tensor, present: torch.Tensor, use_fds: bool = True) -> torch.Tensor:
    """What the receiver makes of received maps before the UNet sees them: FDS (``use_fds``), then
    the absent class slots set to zero (the present-class list is side information). One function
    for the receiver and for a training that shows the network such maps (``fds_training``).

    :param maps: ``[B, K + 1, H, W]`` received class maps + instance-edge map
    :param present: ``[B, K]`` bool present classes
    :return: ``[B, K + 1, H, W]``
    """
    if use_fds:
        maps = fds(maps)
    keep = torch.cat([present, torch.ones_like(present[:, :1])], dim=1).float()[:, :, None, None]
    return maps * keep.to(maps.device)


def insert_absent(present_maps: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Scatter the maps of the present classes into all ``K`` class slots (absent ones = 0).

    :param present_maps: ``[P, H, W]`` maps of the present classes, in increasing class order
    :param present: ``[K]`` bool mask of the present classes (``P = present.sum()``)
    :return: ``[K, H, W]``
    """
    out = present_maps.new_zeros((present.numel(),) + tuple(present_maps.shape[1:]))
    out[present] = present_maps
    return out


class SemanticUNetConfig(StrictModel):
    """Layout of :class:`SemanticUNet`.

    :param label_nc: channels of the condition (classes + 1 instance-edge map)
    :param channels: width per resolution level (each further level halves H and W)
    :param blocks: residual blocks per level (encoder and decoder)
    :param spade_hidden: hidden width of the SPADE ``γ, β`` network (paper: 128)
    :param groups: GroupNorm groups (divides every width)
    :param time_dim: timestep-embedding width
    """

    label_nc: int = Field(9, ge=1)
    channels: list[int] = [32, 64, 64]
    blocks: int = Field(1, ge=1)
    spade_hidden: int = Field(32, ge=1)
    groups: int = Field(8, ge=1)
    time_dim: int = Field(128, ge=8)

    @model_validator(mode="after")
    def _check(self):
        if not self.channels or any(c % self.groups for c in self.channels):
            raise ValueError(f"model.groups={self.groups} must divide every channel width {self.channels}")
        return self


class SpadeGroupNorm(nn.Module):
    """SPADE group norm: ``GroupNorm(affine=False)(x)·(1 + γ(seg)) + β(seg)``.

    :param channels: feature channels ``C``; :param label_nc: condition channels ``L``
    :input x: ``[B, C, H, W]``; :input seg: ``[B, L, H', W']`` (resized to ``H, W``, nearest)
    :output: ``[B, C, H, W]``
    """

    def __init__(self, channels: int, label_nc: int, groups: int, hidden: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        h = self.shared(seg)
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class _ResBlock(nn.Module):
    """Residual block ``norm -> SiLU -> conv -> +time -> norm -> SiLU -> conv`` (+ 1x1 skip);
    the norms are SPADE group norms when ``label_nc`` is given, plain GroupNorm otherwise."""

    def __init__(self, cin: int, cout: int, time_dim: int, groups: int, label_nc: int | None, hidden: int):
        super().__init__()
        self.spade = label_nc is not None
        norm = (lambda c: SpadeGroupNorm(c, label_nc, groups, hidden)) if self.spade else (lambda c: nn.GroupNorm(groups, c))
        self.norm1, self.norm2 = norm(cin), norm(cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.temb = nn.Linear(time_dim, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def _n(self, norm, x, seg):
        return norm(x, seg) if self.spade else norm(x)

    def forward(self, x, temb, seg=None):
        h = self.conv1(F.silu(self._n(self.norm1, x, seg)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self._n(self.norm2, h, seg)))
        return self.skip(x) + h


class SemanticUNet(nn.Module):
    """ε-prediction UNet: encoder on ``x_t`` only; middle and decoder blocks SPADE-conditioned.

    :param config: :class:`SemanticUNetConfig`
    :input x: ``[B, 3, H, W]`` noisy image in [-1, 1] scale; ``H, W`` divisible by
        ``2^(levels-1)``
    :input t: ``[B]`` integer timesteps
    :input seg: ``[B, label_nc, H, W]`` condition (one-hot classes + edge map; zeros = unconditional)
    :output eps: ``[B, 3, H, W]``
    """

    def __init__(self, config: SemanticUNetConfig | None = None):
        super().__init__()
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        cfg = self.config = config or SemanticUNetConfig()
        ch, L, g, hd, td = cfg.channels, cfg.label_nc, cfg.groups, cfg.spade_hidden, cfg.time_dim
        self.time_proj = Timesteps(ch[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(ch[0], td)
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, c = [ch[0]], ch[0]
        for i, co in enumerate(ch):
            for _ in range(cfg.blocks):
                self.down.append(_ResBlock(c, co, td, g, None, hd))
                c = co
                skips.append(c)
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([_ResBlock(c, c, td, g, L, hd), _ResBlock(c, c, td, g, L, hd)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, co in reversed(list(enumerate(ch))):
            for _ in range(cfg.blocks + 1):
                self.up.append(_ResBlock(c + skips.pop(), co, td, g, L, hd))
                c = co
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = SpadeGroupNorm(c, L, g, hd)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        temb = self.time_embed(self.time_proj(t.reshape(-1)).to(x.dtype))
        h = self.conv_in(x)
        hs = [h]
        k = 0
        for i in range(len(cfg.channels)):
            for _ in range(cfg.blocks):
                h = self.down[k](h, temb)
                k += 1
                hs.append(h)
            if i < len(cfg.channels) - 1:
                h = self.downsample[i](h)
                hs.append(h)
        for blk in self.mid:
            h = blk(h, temb, seg)
        k = 0
        for j, i in enumerate(reversed(range(len(cfg.channels)))):
            for _ in range(cfg.blocks + 1):
                h = self.up[k](torch.cat([h, hs.pop()], dim=1), temb, seg)
                k += 1
            if i > 0:
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h, seg)))


def guided_eps(model: nn.Module, x: torch.Tensor, t: torch.Tensor, seg: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``ε̂ = ε(∅) + s·(ε(y) − ε(∅))`` in one doubled batch.

    The same combination of a v-prediction model's outputs is the guided ``v`` (``v`` is affine in
    ``ε`` at fixed ``x_t``, so guiding ``v`` equals guiding ``ε``).

    :param model: ``model(x, t, seg) -> eps``; the unconditional branch is the all-zero map
    :param x: ``[B, 3, H, W]``; :param t: ``[B]``; :param seg: ``[B, L, H, W]``; :param scale: ``s``
    :return: ``[B, 3, H, W]`` (``s = 1``: the conditional ε; ``s = 0``: the unconditional ε)
    """
    b = x.shape[0]
    eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([seg, torch.zeros_like(seg)]))
    cond, uncond = eps[:b], eps[b:]
    return uncond + scale * (cond - uncond)
