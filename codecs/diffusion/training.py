"""Training of the small embedded DDPM prior: ``train_prior(config, output_dir, resume=True)``.

One run = a strict YAML/pydantic config -> random ``crop`` x ``crop`` patches of a multi-scale
corpus (the JSCC training's :class:`~linksim.codecs.jscc.training.CropSampler`, images mapped to
[-1, 1]) -> a diffusers ``UNet2DModel`` trained with the DDPM eps-prediction MSE (Ho et al. 2020,
linear betas, ``T`` = 1000), AdamW, gradient clipping and an exponential moving average (EMA) of
the weights. Every ``checkpoint_every`` steps the run saves model, EMA, optimiser, step, the data
and noise generators' states and the loss history, and resumes from them bit-for-bit (on CPU).
Every ``sample.every`` steps and at the end it writes a grid of samples drawn with the EMA weights
(ancestral sampling of the project's :class:`~linksim.codecs.diffusion.prior.Prior`, respaced to
``sample.steps`` steps). At the end: loss curve PNG and the EMA weights exported as a diffusers
directory (``config.json`` + ``diffusion_pytorch_model.safetensors`` in float16 +
``scheduler_config.json``) that :func:`linksim.codecs.diffusion.loaders.load_prior` reads.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..configs import Count, TrainRunConfig, load_config
from ..configs import StrictModel as _Strict
from ..images import rescale as _resize
from ..jscc.training import CropSampler, DataConfig, _photos, _plot_loss
from ..training_loop import TrainState, ema_update, optimizer_step, resolve_device, run_loop
from .loaders import EMBEDDED_PRIOR_DIR, DiffusersUNet, _betas_from_scheduler_config
from .prior import Prior

__all__ = [
    "TrainPriorConfig", "PriorDataConfig", "UNetConfig", "ScheduleConfig", "PriorOptimConfig", "SampleConfig",
    "PriorTrainResult", "load_prior_train_config", "build_unet", "scheduler_config", "train_prior",
    "export_prior", "export_run", "sample_images", "training_images", "training_target", "EMBEDDED_PRIOR_DIR",
]


class PriorDataConfig(DataConfig):
    """As the JSCC :class:`~linksim.codecs.jscc.training.DataConfig` (``source``, ``folder``,
    ``crop``, ``scales``), but nothing is held out by default: a prior has no held-out metric here."""

    holdout: list[str] = []


class UNetConfig(_Strict):
    """diffusers ``UNet2DModel`` layout (``sample_size`` is the data crop).

    :param block_out_channels: width per resolution level (each level after the first halves H, W)
    :param layers_per_block: residual blocks per level
    :param attention_levels: indices of levels with self-attention (default: the lowest resolution)
    :param norm_num_groups: GroupNorm groups (must divide every width)
    :param dropout: dropout in the residual blocks
    """

    block_out_channels: list[int] = [32, 64, 64]
    layers_per_block: int = Field(1, ge=1)
    attention_levels: list[int] | None = None
    attention_head_dim: int = Field(8, ge=1)
    norm_num_groups: int = Field(8, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _check(self):
        if not self.block_out_channels or any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"model.norm_num_groups={self.norm_num_groups} must divide every block_out_channels "
                             f"{self.block_out_channels}")
        levels = self.attention_levels or []
        if any(not 0 <= i < len(self.block_out_channels) for i in levels):
            raise ValueError(f"model.attention_levels {levels} out of range for {len(self.block_out_channels)} levels")
        return self


class ScheduleConfig(_Strict):
    """DDPM noise schedule (diffusers ``DDPMScheduler``, ``beta_schedule: linear``, betas linear
    from ``beta_start`` to ``beta_end`` over ``num_train_timesteps``)."""

    num_train_timesteps: int = Field(1000, ge=2)
    beta_start: float = Field(1e-4, gt=0, lt=1)
    beta_end: float = Field(0.02, gt=0, lt=1)


class PriorOptimConfig(_Strict):
    """AdamW with a linear warm-up of ``warmup`` steps, then constant ``lr``; gradients clipped to
    global norm ``grad_clip``; EMA decay ``min(ema_decay, (1 + s) / (10 + s))`` at step ``s``
    (the usual warm-up so that early EMA weights are not dominated by the random init)."""

    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup: int = Field(500, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    ema_decay: float = Field(0.9995, ge=0, lt=1)


class SampleConfig(_Strict):
    """Sample grids: ``count`` samples with the EMA weights, ``steps`` respaced reverse steps,
    every ``every`` steps (``None``: only at the end)."""

    every: int | None = Field(5000, ge=1)
    count: int = Field(16, ge=1)
    steps: int = Field(50, ge=1)


class TrainPriorConfig(TrainRunConfig):
    """A prior training run (``configs/prior_*.yaml``): the run fields of
    :class:`~linksim.codecs.configs.TrainRunConfig` with the defaults of a GPU run (the thread
    count is restored afterwards), then ``export_dtype`` and the sections."""

    name: str = "prior"
    steps: Count = 50000
    batch_size: Count = 128
    checkpoint_every: Count = 1000
    export_dtype: Literal["float16", "float32"] = "float16"
    data: PriorDataConfig = PriorDataConfig()
    model: UNetConfig = UNetConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    optim: PriorOptimConfig = PriorOptimConfig()
    sample: SampleConfig = SampleConfig()


def training_images(data: PriorDataConfig) -> list[torch.Tensor]:
    """The corpus a prior trains on: every non-held-out image at every ``data.scales``,
    ``[3, H, W]`` float32 in [0, 1] (crops are drawn from these).

    :raises ValueError: a ``data.holdout`` name that is not in the corpus
    """
    photos = _photos(data)
    missing = [n for n in data.holdout if n not in photos]
    if missing:
        raise ValueError(f"data.holdout names not in the corpus: {missing}")
    return [_resize(im, s) for name, im in photos.items() if name not in data.holdout for s in data.scales]


def load_prior_train_config(config) -> TrainPriorConfig:
    """A config from a YAML path, a dict or a :class:`TrainPriorConfig` (validated, strict)."""
    return load_config(TrainPriorConfig, config)


def build_unet(cfg: UNetConfig, sample_size: int):
    """A diffusers ``UNet2DModel`` (3 -> 3 channels, eps prediction) for ``sample_size`` images."""
    from diffusers import UNet2DModel

    n = len(cfg.block_out_channels)
    attn = set(cfg.attention_levels if cfg.attention_levels is not None else [n - 1])
    down = tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if i in attn else "UpBlock2D" for i in reversed(range(n)))
    if sample_size % 2 ** (n - 1):
        raise ValueError(f"crop {sample_size} must be divisible by 2^{n - 1} for {n} UNet levels")
    return UNet2DModel(
        sample_size=sample_size, in_channels=3, out_channels=3, block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block, down_block_types=down, up_block_types=up,
        attention_head_dim=cfg.attention_head_dim, norm_num_groups=cfg.norm_num_groups, dropout=cfg.dropout,
    )


def scheduler_config(cfg: ScheduleConfig, prediction_type: str = "epsilon") -> dict:
    """The diffusers ``DDPMScheduler`` kwargs of this schedule (fixed-small variance) for a UNet that
    predicts ``prediction_type`` (diffusers' ``epsilon`` | ``sample`` | ``v_prediction``)."""
    return dict(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
                beta_schedule="linear", prediction_type=prediction_type, variance_type="fixed_small", clip_sample=True)


def training_target(prediction_type: str, x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The regression target of diffusers' parametrisation ``prediction_type`` for
    ``x_t = √ᾱ x0 + √(1−ᾱ) ε`` (``abar`` broadcastable to ``x0``): ε, x0, or v = √ᾱ ε − √(1−ᾱ) x0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    return abar.sqrt() * noise - (1 - abar).sqrt() * x0


def _prior(unet, sched: dict) -> Prior:
    # the same betas (and variance choice) the loader derives from the exported scheduler config
    return Prior(DiffusersUNet(unet), _betas_from_scheduler_config(sched), False, fixed_variance="small")


@torch.no_grad()
def sample_images(prior: Prior, count: int, size: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Ancestral (DDPM) samples of ``prior`` respaced to ``steps`` steps.

    Each posterior mean is computed from the Tweedie estimate ``x̂0`` clipped to [-1, 1], as
    the receivers' sampler, ADM (``clip_denoised``) and the exported scheduler (``clip_sample``)
    do: at large ``t``, ``x̂0 = (x_t − √(1−ᾱ)ε̂)/√ᾱ`` multiplies the network's error by up to
    ``1/√ᾱ_T`` ≈ 156, and an unclipped chain of a small prior drifts to saturated flat colours.

    :param generator: on the prior's device; the only randomness
    :return: ``[count, 3, size, size]`` float32 in [-1, 1]
    """
    p = prior.respaced(steps) if steps < prior.num_timesteps else prior
    dev = p.betas.device
    x = torch.randn(count, 3, size, size, generator=generator, device=dev)
    for i in reversed(range(p.num_timesteps)):
        t = torch.full((count,), i, dtype=torch.long, device=dev)
        _, var, x0_hat, _ = p.p_sample_stats(x, t)
        mean, _, _ = p.posterior_mean_variance(x0_hat.clamp(-1, 1), x, t)
        x = mean + var.sqrt() * torch.randn(x.shape, generator=generator, device=dev) if i > 0 else mean
    return x.float().clamp(-1, 1)


def _save_grid(images: torch.Tensor, path: Path) -> None:
    from torchvision.utils import save_image

    save_image((images + 1) / 2, path, nrow=max(1, math.isqrt(images.shape[0])), padding=1)


class PriorTrainResult(BaseModel):
    """What :func:`train_prior` returns (paths under ``output_dir``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    export_dir: Path
    loss_png: Path
    samples_png: Path
    steps: int
    final_loss: float
    seconds: float


def export_prior(ema_unet, sched: dict, dest: str | Path, dtype: str = "float16", extra: dict | None = None) -> Path:
    """Write a diffusers directory readable by :func:`~linksim.codecs.diffusion.loaders.load_prior`.

    :param ema_unet: the ``UNet2DModel`` to export (copied; the original is not changed)
    :param sched: :func:`scheduler_config` dict
    :param dest: the directory (``config.json``, ``diffusion_pytorch_model.safetensors``,
        ``scheduler_config.json``, ``training.json`` with ``extra``)
    :param dtype: stored weight dtype (``float16`` halves the size)
    """
    from diffusers import DDPMScheduler

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    unet = copy.deepcopy(ema_unet).to("cpu", getattr(torch, dtype))
    unet.save_pretrained(dest, safe_serialization=True)
    DDPMScheduler(**sched).save_pretrained(dest)
    (dest / "training.json").write_text(json.dumps(extra or {}, indent=1))
    return dest


def train_prior(
    config, output_dir: str | Path | None = None, resume: bool = True, progress: bool = True, stop_at: int | None = None
) -> PriorTrainResult | None:
    """Train the DDPM prior.

    :param config: YAML path, dict or :class:`TrainPriorConfig`
    :param output_dir: run folder (default: ``config.output``, else ``runs/<name>``)
    :param resume: continue from ``output_dir/checkpoint.pt`` when it exists
    :param progress: show a tqdm progress bar
    :param stop_at: checkpoint and return ``None`` once this step is reached (a later call with
        ``resume=True`` continues exactly where this one stopped)
    :return: :class:`PriorTrainResult` (files: ``checkpoint.pt``, ``config.yaml``, ``loss.png``,
        ``samples_<step>.png``, ``samples.png``, ``ddpm/`` = the exported EMA prior)
    """
    cfg = load_prior_train_config(config)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(cfg, output_dir, resume, progress, stop_at)
    finally:  # the thread count is process-wide: give the caller back its own
        torch.set_num_threads(threads)


def _train(cfg: TrainPriorConfig, output_dir, resume: bool, progress: bool, stop_at: int | None) -> PriorTrainResult | None:
    out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
    device = resolve_device(cfg.device)
    t0 = time.time()

    torch.manual_seed(cfg.seed)  # parameter initialisation only; data and noise use own generators
    unet = build_unet(cfg.model, cfg.data.crop).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False).eval()
    sched = scheduler_config(cfg.schedule)
    prior = _prior(unet, sched).to(device)
    T = prior.num_timesteps
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    warm = cfg.optim.warmup
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    train = training_images(cfg.data)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    sampler = CropSampler(train, cfg.data.crop, data_gen)

    state = TrainState({"model": unet, "ema": ema}, {"optimizer": opt}, {"scheduler": lr_sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})

    def grid(path: Path) -> None:
        g = torch.Generator(device=device).manual_seed(cfg.seed + 2)  # same noise every grid: comparable
        _save_grid(sample_images(_prior(ema, sched).to(device), cfg.sample.count, cfg.data.crop, cfg.sample.steps, g).cpu(), path)

    use_amp = cfg.amp and device.type == "cuda"

    def step(_s: int) -> float:
        x0 = sampler(cfg.batch_size).to(device) * 2 - 1
        t = torch.randint(T, (cfg.batch_size,), generator=noise_gen, device=device)
        noise = torch.randn(x0.shape, generator=noise_gen, device=device)
        x_t = prior.q_sample(x0, t, noise)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            eps = prior.eps(x_t, t)
        return optimizer_step(F.mse_loss(eps.float(), noise), opt, lr_sched, unet.parameters(), cfg.optim.grad_clip)

    def after_step(done: int) -> None:
        ema_update(ema, unet, cfg.optim.ema_decay, done)
        if cfg.sample.every and done % cfg.sample.every == 0 and done < cfg.steps:
            grid(out / f"samples_{done:07d}.png")

    unet.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device,
                    on_step=after_step):
        return None
    losses = state.losses

    samples_png = out / "samples.png"
    grid(samples_png)
    loss_png = out / "loss.png"
    _plot_loss(losses, loss_png, f"{cfg.name}: eps-MSE (UNet {cfg.model.block_out_channels}, crop {cfg.data.crop})")
    export_dir = export_run(out, out / "ddpm")  # from the final checkpoint just written
    return PriorTrainResult(export_dir=export_dir, loss_png=loss_png, samples_png=samples_png, steps=state.step,
                            final_loss=losses[-1] if losses else float("nan"), seconds=time.time() - t0)


def export_run(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Export the EMA weights of a run's latest ``checkpoint.pt`` (finished or stopped early).

    :param run_dir: a :func:`train_prior` run folder (``config.yaml`` + ``checkpoint.pt``)
    :param dest: target directory (default :data:`EMBEDDED_PRIOR_DIR`)
    :return: the diffusers directory written by :func:`export_prior`
    """
    run_dir = Path(run_dir)
    cfg = load_prior_train_config(run_dir / "config.yaml")
    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    ema = build_unet(cfg.model, cfg.data.crop)
    ema.load_state_dict(ck["ema"])
    losses = ck["losses"][-100:]
    return export_prior(ema.eval(), scheduler_config(cfg.schedule), dest or EMBEDDED_PRIOR_DIR, cfg.export_dtype, extra={
        "trained_steps": int(ck["step"]), "batch_size": cfg.batch_size,
        "final_loss_mean_100": sum(losses) / max(len(losses), 1), "train_config": cfg.model_dump(mode="json"),
    })
