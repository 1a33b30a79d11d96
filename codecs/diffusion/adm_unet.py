"""ADM UNet (Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis", 2021).

Written from the architecture description of OpenAI's guided-diffusion so that the published
pixel-space checkpoints (DPS ``ffhq_10m.pt``, OpenAI ``256x256_diffusion_uncond.pt``) load with
``load_state_dict(strict=True)``. Parameter names therefore follow the published layout exactly:
``time_embed.{0,2}``, ``input_blocks.{i}.{j}``, ``middle_block.{0,1,2}``, ``output_blocks.{i}.{j}``,
``out.{0,2}``; inside a residual block ``in_layers.{0,2}``, ``emb_layers.1``, ``out_layers.{0,3}``,
``skip_connection``; inside an attention block ``norm``, ``qkv``, ``proj_out``.

Written by hand (not taken from diffusers) because diffusers' ``UNet2DModel`` uses a different
parameter layout and attention head split, so the ADM checkpoints would need a lossy, fragile
key conversion. Only the unconditional 2-D variant is implemented (no ``label_emb``, no fp16
switch, no gradient checkpointing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ADMUNet", "timestep_embedding", "adm_channel_mult"]


def adm_channel_mult(image_size: int) -> tuple[float, ...]:
    """Channel multipliers ADM uses per resolution level for a square image of side ``image_size``.

    :param image_size: image side in pixels (64, 128, 256 or 512).
    :returns: one multiplier per level; the number of levels minus one is the number of halvings.
    :raises ValueError: for a size with no published default (pass ``channel_mult`` explicitly).
    """
    table = {
        512: (0.5, 1, 1, 2, 2, 4, 4),
        256: (1, 1, 2, 2, 4, 4),
        128: (1, 1, 2, 3, 4),
        64: (1, 2, 3, 4),
    }
    if image_size not in table:
        raise ValueError(
            f"no default channel_mult for image_size={image_size}; known: {sorted(table)}"
        )
    return table[image_size]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal timestep embedding, cosine half first (ADM convention).

    :param t: timesteps, shape ``[B]`` (integer or float).
    :param dim: embedding width.
    :param max_period: the slowest frequency's period.
    :returns: ``[B, dim]`` float32.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32 groups) computed in float32 whatever the input dtype (as ADM does)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type(x.dtype)


def _norm(channels: int) -> nn.GroupNorm:
    return GroupNorm32(32, channels)


class TimestepSequential(nn.Sequential):
    """A sequential container that hands the timestep embedding to the residual blocks in it."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class Downsample(nn.Module):
    """Halve the resolution: strided 3x3 conv (key ``op``) or, without conv, a 2x2 average pool."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        out_channels = out_channels or channels
        if use_conv:
            self.op = nn.Conv2d(channels, out_channels, 3, stride=2, padding=1)
        else:
            if out_channels != channels:
                raise ValueError("average-pool downsampling cannot change the channel count")
            self.op = nn.AvgPool2d(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Double the resolution by nearest-neighbour, then optionally a 3x3 conv (key ``conv``)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.conv = (
            nn.Conv2d(channels, out_channels or channels, 3, padding=1) if use_conv else None
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.conv is not None else x


class ResBlock(nn.Module):
    """Residual block with timestep conditioning; optional up/down-sampling inside the block.

    With ``scale_shift`` the embedding gives (scale, shift) applied after the output GroupNorm
    (``norm(h) * (1 + scale) + shift``); otherwise it is added before it.

    :param channels: input channels.
    :param emb_channels: timestep-embedding width.
    :param out_channels: output channels (default ``channels``); a 1x1 conv skip when they differ.
    :param dropout: dropout rate before the last conv.
    :param scale_shift: FiLM-like scale-shift norm.
    :param up: nearest 2x upsampling of both paths (between the input norm/SiLU and conv).
    :param down: 2x2 average-pool downsampling of both paths.
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        scale_shift: bool = True,
        up: bool = False,
        down: bool = False,
    ):
        super().__init__()
        out_channels = out_channels or channels
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd: nn.Module = Upsample(channels, False)
            self.x_upd: nn.Module = Upsample(channels, False)
        elif down:
            self.h_upd = Downsample(channels, False)
            self.x_upd = Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, (2 if scale_shift else 1) * out_channels)
        )
        self.out_layers = nn.Sequential(
            _norm(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        # Zero-init of the residual branch's last conv: a fresh block is the identity map
        # (checkpoint loading overwrites it).
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        if self.updown:
            # Resample between the activation and the conv, as ADM does.
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial self-attention over all H*W positions, ADM "legacy" head order.

    The 1x1 ``qkv`` conv output is split into heads first, then each head's channels into
    (q, k, v) — the order the published checkpoints were trained with.

    :param channels: feature channels.
    :param num_heads: heads, used when ``num_head_channels == -1``.
    :param num_head_channels: channels per head (overrides ``num_heads``).
    """

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1):
        super().__init__()
        if num_head_channels != -1:
            if channels % num_head_channels:
                raise ValueError(
                    f"channels {channels} not divisible by num_head_channels {num_head_channels}"
                )
            num_heads = channels // num_head_channels
        self.num_heads = num_heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        length = qkv.shape[-1]
        ch = c // self.num_heads
        # [B, heads*3*ch, L] -> per head [q; k; v] -> [B, heads, L, ch] for SDPA.
        q, k, v = qkv.reshape(b, self.num_heads, 3 * ch, length).transpose(2, 3).split(ch, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(ch)) v
        h = h.transpose(2, 3).reshape(b, c, length)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class ADMUNet(nn.Module):
    """Unconditional ADM UNet predicting eps (and, with ``learn_sigma``, the variance interpolant).

    :param image_size: training image side; fixes which levels get attention.
    :param model_channels: base width (128 for DPS FFHQ, 256 for OpenAI ImageNet 256 uncond).
    :param num_res_blocks: residual blocks per level on the way down (one more on the way up).
    :param attention_resolutions: resolutions (in pixels, e.g. ``"16"`` or ``(8, 16, 32)``) that
        get an attention block after each residual block.
    :param in_channels: image channels.
    :param learn_sigma: output ``2 * in_channels`` channels: eps then the variance interpolant v.
    :param channel_mult: per-level multipliers; default from :func:`adm_channel_mult`.
    :param num_heads: heads when ``num_head_channels == -1``.
    :param num_head_channels: channels per attention head.
    :param num_heads_upsample: heads in the decoder's attention (``-1``: same as ``num_heads``).
    :param use_scale_shift_norm: FiLM scale-shift conditioning in residual blocks.
    :param resblock_updown: resample with residual blocks (else conv / average pool).
    :param conv_resample: use convs in the plain resamplers (ignored with ``resblock_updown``).
    :param dropout: dropout rate in residual blocks.

    Input ``x`` ``[B, in_channels, H, W]`` in [-1, 1], ``t`` ``[B]`` timesteps of the original
    T-step chain; output ``[B, out_channels, H, W]`` float.
    """

    def __init__(
        self,
        image_size: int = 256,
        model_channels: int = 128,
        num_res_blocks: int = 1,
        attention_resolutions: str | Sequence[int] = "16",
        in_channels: int = 3,
        learn_sigma: bool = True,
        channel_mult: Sequence[float] | None = None,
        num_heads: int = 4,
        num_head_channels: int = 64,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = True,
        resblock_updown: bool = True,
        conv_resample: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(attention_resolutions, str):
            attention_resolutions = [int(r) for r in attention_resolutions.split(",") if r]
        # Attention is keyed on the downsampling factor ds = image_size / resolution.
        attention_ds = {image_size // int(r) for r in attention_resolutions}
        mult = tuple(channel_mult) if channel_mult is not None else adm_channel_mult(image_size)
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        self.image_size = image_size
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.learn_sigma = learn_sigma
        self.model_channels = model_channels
        self.num_levels = len(mult)
        emb_dim = 4 * model_channels

        def res(cin: int, cout: int, **kw) -> ResBlock:
            return ResBlock(cin, emb_dim, cout, dropout, use_scale_shift_norm, **kw)

        def attn(ch: int, heads: int) -> AttentionBlock:
            return AttentionBlock(ch, heads, num_head_channels)

        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        ch = input_ch = int(mult[0] * model_channels)
        self.input_blocks = nn.ModuleList(
            [TimestepSequential(nn.Conv2d(in_channels, ch, 3, padding=1))]
        )
        skip_chans = [ch]
        ds = 1
        for level, m in enumerate(mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(m * model_channels))]
                ch = int(m * model_channels)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads))
                self.input_blocks.append(TimestepSequential(*layers))
                skip_chans.append(ch)
            if level != len(mult) - 1:
                down = (
                    res(ch, ch, down=True)
                    if resblock_updown
                    else Downsample(ch, conv_resample, ch)
                )
                self.input_blocks.append(TimestepSequential(down))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = TimestepSequential(res(ch, ch), attn(ch, num_heads), res(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, m in list(enumerate(mult))[::-1]:
            for i in range(num_res_blocks + 1):
                skip = skip_chans.pop()
                layers = [res(ch + skip, int(m * model_channels))]
                ch = int(m * model_channels)
                if ds in attention_ds:
                    layers.append(attn(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    layers.append(
                        res(ch, ch, up=True)
                        if resblock_updown
                        else Upsample(ch, conv_resample, ch)
                    )
                    ds //= 2
                self.output_blocks.append(TimestepSequential(*layers))
        self.out = nn.Sequential(
            _norm(ch), nn.SiLU(), nn.Conv2d(input_ch, self.out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """:param x: ``[B, C, H, W]``; :param t: ``[B]`` timesteps. :returns: ``[B, out_channels, H, W]``."""
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
