"""Training of LRISC in three stages: ``linksim train lrisc CONFIG`` (``stage:`` in the config).

1. ``transform`` — ``g_a``, ``g_s``, ``h_a``, ``h_s`` and both entropy models for rate–distortion:
   ``L = λ·255²·MSE(g_s(ỹ), x) + (bits(ỹ) + bits(z̃)) / (H·W)`` with the uniform-noise proxy
   ``ỹ = y + U(−½, ½)`` (:mod:`.entropy`), Adam.
2. ``jscc`` — from stage 1 (``init``), the transform's analysis side and the entropy models frozen
   (the lengths must keep meaning what the entropy model says); ``f_e``, ``f_d`` and ``g_s`` learn
   ``MSE(g_s(f_d(AWGN(f_e(y, k)))), x)`` with, per image, a CSNR ~ U(``csnr_db``) (one model for
   all SNRs, through the AF modules) and lengths ``k`` allocated from the image's own information
   with a per-group budget ~ U(``symbols_per_group``) (``fixed_total``): the JSCC sees every budget
   it will serve and learns to put what matters into the first symbols of a group. At the end the
   exported JSON gets the calibration pool of ``adaptive`` (group bits of training crops) and the
   held-out PSNR per CSNR.
3. ``diffusion`` — from stage 2 (``init``, frozen): the latent-conditioned diffusion decoder
   (:mod:`.decoder`) on decoded latents ``ŷ`` of training crops sent as in stage 2; x̂0-prediction
   (``prediction_type: sample``) MSE on random ``window`` sub-crops (aligned to the latent grid),
   AdamW with warm-up, gradient clipping, EMA; exported as a diffusers directory.

Every stage checkpoints and resumes through :func:`linksim.codecs.training_loop.run_loop`.
Training images: the embedded corpus minus ``data.holdout`` (coffee, chelsea by default: the
held-out evaluation images; nothing is tuned on them).
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
from pydantic import Field, model_validator

from ..configs import Count, StrictModel, TrainRunConfig, load_config
from ..diffusion.training import PriorOptimConfig, ScheduleConfig, UNetConfig, training_images, training_target
from ..images import psnr
from ..jscc.training import CropSampler, DataConfig, _plot_loss, eval_images
from ..training_loop import TrainState, ema_update, optimizer_step, resolve_device, run_loop
from .allocation import allocate
from .entropy import bits
from .model import DOWNSAMPLING, LRISC, LRISCConfig, load_lrisc, save_lrisc

__all__ = ["TrainLRISCConfig", "load_lrisc_train_config", "train_lrisc", "evaluate_synthesis", "calibration_pool",
           "sample_lengths"]


class LRISCModelConfig(StrictModel):
    """The :class:`~.model.LRISCConfig` of stage 1 (stages 2–3 take it from ``init``)."""

    filters: int = Field(64, ge=1)
    latent: int = Field(32, ge=1)
    hyper: int = Field(32, ge=1)
    jscc_filters: int = Field(128, ge=1)
    group: int = Field(2, ge=1)
    lengths: list[int] = [0, 4, 8, 12, 16, 24, 32, 48]


class LRISCOptimConfig(StrictModel):
    """Adam (stages 1–2), cosine decay to ``lr·min_lr_ratio``."""

    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float = Field(1.0, gt=0)


class DiffusionStageConfig(StrictModel):
    """Stage 3: the conditional UNet, its schedule and optimiser (as the DDPM trainings').

    :param window: training window side [px] (multiple of ``8·group``; the UNet is convolutional)
    :param prediction_type: ``sample`` (x̂0, the default: a small model trained for minutes uses
        its condition much sooner than with ε, whose x̂0 amplifies errors by ``1/√ᾱ``) or ``epsilon``
    """

    model: UNetConfig = UNetConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    optim: PriorOptimConfig = PriorOptimConfig(lr=5e-4, warmup=100, ema_decay=0.999)
    window: int = Field(32, ge=8)
    prediction_type: Literal["sample", "epsilon"] = "sample"


class TrainLRISCConfig(TrainRunConfig):
    """An LRISC training stage (``configs/lrisc_embedded_*.yaml``).

    :param stage: ``transform`` | ``jscc`` | ``diffusion`` (module notes)
    :param init: the previous stage's weights (``.safetensors`` written by :func:`.model.save_lrisc`)
    :param lmbda: stage 1's distortion weight ``λ`` (of ``255²·MSE``)
    :param csnr_db: stages 2–3: CSNR range drawn per image [dB]
    :param symbols_per_group: stages 2–3: per-image budget per group drawn uniformly in this range
    :param export: where the stage's weights go (default ``<run>/lrisc.safetensors``, stage 3
        ``<run>/ddpm``)
    :param eval_csnr_db: CSNRs of the held-out PSNR table (stage 2)
    """

    name: str = "lrisc"
    stage: Literal["transform", "jscc", "diffusion"] = "transform"
    init: str | None = None
    steps: Count = 1000
    batch_size: Count = 16
    checkpoint_every: Count = 100
    amp: bool = False
    data: DataConfig = DataConfig(crop=64)
    model: LRISCModelConfig = LRISCModelConfig()
    lmbda: float = Field(0.01, gt=0)
    csnr_db: tuple[float, float] = (0.0, 20.0)
    symbols_per_group: tuple[float, float] = (4.0, 32.0)
    optim: LRISCOptimConfig = LRISCOptimConfig()
    diffusion: DiffusionStageConfig = DiffusionStageConfig()
    export: str | None = None
    eval_csnr_db: list[float] = [0.0, 5.0, 10.0, 15.0, 20.0]

    @model_validator(mode="after")
    def _check(self):
        if self.stage != "transform" and not self.init:
            raise ValueError(f"stage {self.stage} needs init: the previous stage's .safetensors")
        return self


def load_lrisc_train_config(config) -> TrainLRISCConfig:
    """A config from a YAML path, a dict or a :class:`TrainLRISCConfig` (validated, strict)."""
    return load_config(TrainLRISCConfig, config)


def sample_lengths(model: LRISC, y: torch.Tensor, per_group: tuple[float, float],
                   generator: torch.Generator) -> torch.Tensor:
    """Stage-2/3 lengths: each image's information allocated to a budget ``~ U(per_group)·G``.

    :output: ``[B, G]`` symbols per group (``fixed_total`` allocation of :mod:`.allocation`)
    """
    info = model.information(y)
    b, g = info.shape
    lo, hi = per_group
    budgets = (lo + (hi - lo) * torch.rand(b, generator=generator, device=y.device)) * g
    table = model.table
    idx = torch.stack([allocate(info[i : i + 1], table, "fixed_total", int(budgets[i]))[0] for i in range(b)])
    return table.tensor(y.device)[idx]


@torch.no_grad()
def calibration_pool(model: LRISC, images: list[torch.Tensor], crop: int, count: int, seed: int,
                     size: int = 1024) -> list[float]:
    """Group bits of ``count`` random training crops, as ``size`` evenly spaced quantiles (the
    ``adaptive`` calibration set, small enough for the JSON)."""
    x = CropSampler(images, crop, torch.Generator().manual_seed(seed))(count)
    dev = next(model.parameters()).device
    info = torch.cat([model.information(model.analysis(x[i : i + 16].to(dev))).flatten() for i in range(0, count, 16)])
    q = torch.quantile(info.double().cpu(), torch.linspace(0, 1, size, dtype=torch.float64))
    return [round(float(v), 3) for v in q]


@torch.no_grad()
def evaluate_synthesis(model: LRISC, images: torch.Tensor, csnr_db: list[float], per_group: float,
                       seed: int = 1234) -> dict[float, float]:
    """Mean held-out PSNR [dB] of the synthesis decoder over AWGN at each CSNR, ``per_group`` symbols."""
    dev = next(model.parameters()).device
    x = images.to(dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    y = model.analysis(x)
    info = model.information(y)
    k = model.table.tensor(dev)[allocate(info, model.table, "fixed_total", int(per_group * info.shape[1]))]
    out = {}
    for snr in csnr_db:
        x_hat, _, _ = model.forward_jscc(x, k, torch.full((x.shape[0],), float(snr), device=dev), g)
        out[float(snr)] = float(psnr(x_hat.clamp(0, 1), x).mean())
    return out


def train_lrisc(config, output_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                stop_at: int | None = None) -> Path | None:
    """Run one stage; returns the exported weights (file, or stage 3's directory), ``None`` when
    stopped early at ``stop_at`` (a later call resumes from ``checkpoint.pt``)."""
    cfg = load_lrisc_train_config(config)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        stage = {"transform": _transform, "jscc": _jscc, "diffusion": _diffusion}[cfg.stage]
        out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
        return stage(cfg, out, resume, progress, stop_at)
    finally:  # the thread count is process-wide: give the caller back its own
        torch.set_num_threads(threads)


def _cosine(opt, cfg: TrainLRISCConfig):
    r, n = cfg.optim.min_lr_ratio, cfg.steps
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(s, n) / n)))


def _setup(cfg: TrainLRISCConfig, model_from_init: bool):
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # parameter initialisation only; data and noise use own generators
    if model_from_init:
        model = load_lrisc(cfg.init, device)
    else:
        model = LRISC(LRISCConfig(**cfg.model.model_dump())).to(device)
    if cfg.data.crop % model.multiple:
        raise ValueError(f"data.crop {cfg.data.crop} must be a multiple of {model.multiple}")
    train = training_images(cfg.data)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    return device, model, train, CropSampler(train, cfg.data.crop, data_gen), data_gen, noise_gen


def _transform(cfg: TrainLRISCConfig, out: Path, resume, progress, stop_at):
    device, model, train, sampler, data_gen, noise_gen = _setup(cfg, False)
    params = [p for n, p in model.named_parameters() if n.split(".")[0] in ("g_a", "g_s", "h_a", "h_s", "z_prior")]
    opt = torch.optim.Adam(params, lr=cfg.optim.lr)
    sched = _cosine(opt, cfg)
    state = TrainState({"model": model}, {"optimizer": opt}, {"scheduler": sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})

    def step(_):
        x = sampler(cfg.batch_size).to(device)
        y = model.analysis(x)
        y_t, p_y, _, p_z = model.likelihoods(y, "noise", noise_gen)
        x_hat = model.synthesis(y_t)
        bpp = (bits(p_y).sum() + bits(p_z).sum()) / (x.shape[0] * x.shape[-2] * x.shape[-1])
        return optimizer_step(cfg.lmbda * 255**2 * F.mse_loss(x_hat, x) + bpp, opt, sched, params, cfg.optim.grad_clip)

    model.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device):
        return None
    _plot_loss(state.losses, out / "loss.png", f"{cfg.name}: λ·255²·MSE + bpp")
    model.eval()
    return save_lrisc(model, Path(cfg.export or out / "lrisc.safetensors"), extra={
        "stage": "transform", "trained_steps": state.step, "lmbda": cfg.lmbda, "train_config": cfg.model_dump(mode="json")})


def _jscc(cfg: TrainLRISCConfig, out: Path, resume, progress, stop_at):
    device, model, train, sampler, data_gen, noise_gen = _setup(cfg, True)
    trained = ("enc_body", "enc_group", "enc_out", "dec_group", "dec_body", "dec_out", "g_s")
    for n, p in model.named_parameters():
        p.requires_grad_(n.split(".")[0] in trained)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.optim.lr)
    sched = _cosine(opt, cfg)
    state = TrainState({"model": model}, {"optimizer": opt}, {"scheduler": sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})
    lo, hi = cfg.csnr_db

    def step(_):
        x = sampler(cfg.batch_size).to(device)
        b = x.shape[0]
        with torch.no_grad():
            k = sample_lengths(model, model.analysis(x), cfg.symbols_per_group, noise_gen)
        snr = lo + (hi - lo) * torch.rand(b, generator=noise_gen, device=device)
        x_hat, _, _ = model.forward_jscc(x, k, snr, noise_gen)
        return optimizer_step(F.mse_loss(x_hat, x), opt, sched, params, cfg.optim.grad_clip)

    model.train()
    # the frozen analysis side stays in eval mode (no state of its own changes either way)
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device):
        return None
    _plot_loss(state.losses, out / "loss.png", f"{cfg.name}: MSE over AWGN {lo:g}–{hi:g} dB")
    model.eval()
    held = eval_images(cfg.data)
    mid = 0.5 * sum(cfg.symbols_per_group)
    table = evaluate_synthesis(model, held, cfg.eval_csnr_db, mid, seed=cfg.seed + 2)
    prev = json.loads(Path(cfg.init).with_suffix(".json").read_text())
    return save_lrisc(model, Path(cfg.export or out / "lrisc.safetensors"), extra={
        "stage": "jscc", "trained_steps": {"transform": prev.get("trained_steps"), "jscc": state.step},
        "lmbda": prev.get("lmbda"), "csnr_db": list(cfg.csnr_db), "symbols_per_group": list(cfg.symbols_per_group),
        "calibration_bits": calibration_pool(model, train, cfg.data.crop, 256, cfg.seed + 5),
        "holdout": list(cfg.data.holdout), "eval_size": cfg.data.eval_size,
        "psnr_awgn_holdout_synthesis": {f"{k:g}": round(v, 2) for k, v in table.items()},
        "psnr_eval_symbols_per_group": mid,
        "train_config": cfg.model_dump(mode="json")})


def _diffusion(cfg: TrainLRISCConfig, out: Path, resume, progress, stop_at):
    from ..diffjscc.pixel import PixelRefiner, build_conditional_unet
    from ..diffusion.training import scheduler_config
    from .decoder import export_decoder, latent_condition

    device, model, train, sampler, data_gen, noise_gen = _setup(cfg, True)
    model.requires_grad_(False)
    d = cfg.diffusion
    if d.window % model.multiple or d.window > cfg.data.crop:
        raise ValueError(f"diffusion.window {d.window} must be a multiple of {model.multiple} and <= data.crop")
    unet = build_conditional_unet(d.model, d.window, cond_channels=model.config.latent).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False).eval()
    sched = scheduler_config(d.schedule, d.prediction_type)
    from .decoder import ddim_alphas

    abar = ddim_alphas(sched).to(device)
    T = abar.numel()
    # the condition's scale: the RMS of decoded latents of training crops (fixed before step 0)
    with torch.no_grad():
        gs = torch.Generator().manual_seed(cfg.seed + 7)
        xs = CropSampler(train, cfg.data.crop, gs)(32).to(device)
        latent_scale = float(model.analysis(xs).square().mean().sqrt())
    opt = torch.optim.AdamW(unet.parameters(), lr=d.optim.lr, betas=d.optim.betas, weight_decay=d.optim.weight_decay)
    warm = d.optim.warmup
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
    state = TrainState({"model": unet, "ema": ema}, {"optimizer": opt}, {"scheduler": lr_sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})
    net = PixelRefiner(unet, sched)
    lo, hi = cfg.csnr_db
    cell = DOWNSAMPLING

    def step(s):
        x = sampler(cfg.batch_size).to(device)
        b = x.shape[0]
        with torch.no_grad():
            y = model.analysis(x)
            k = sample_lengths(model, y, cfg.symbols_per_group, noise_gen)
            snr = lo + (hi - lo) * torch.rand(b, generator=noise_gen, device=device)
            _, y_hat, _ = model.forward_jscc(x, k, snr, noise_gen)
            cond = latent_condition(y_hat, latent_scale)
            # the same latent-aligned window of image and condition
            n = (cfg.data.crop - d.window) // cell + 1
            top = (torch.randint(n, (b,), generator=noise_gen, device=device) * cell).tolist()
            left = (torch.randint(n, (b,), generator=noise_gen, device=device) * cell).tolist()
            w = d.window
            x = torch.stack([x[i, :, t : t + w, l : l + w] for i, (t, l) in enumerate(zip(top, left))])
            cond = torch.stack([cond[i, :, t : t + w, l : l + w] for i, (t, l) in enumerate(zip(top, left))])
        t = torch.randint(T, (b,), generator=noise_gen, device=device)
        noise = torch.randn(x.shape, generator=noise_gen, device=device)
        a = abar[t].reshape(b, 1, 1, 1)
        x0 = x * 2 - 1
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = training_target(d.prediction_type, x0, noise, a)
        loss = optimizer_step(F.mse_loss(net.eps(x_t, t, cond, snr), target), opt, lr_sched, list(unet.parameters()),
                       d.optim.grad_clip)
        ema_update(ema, unet, d.optim.ema_decay, s + 1)
        return loss

    unet.train()
    t0 = time.time()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device):
        return None
    _plot_loss(state.losses, out / "loss.png", f"{cfg.name}: x0-MSE (conditional UNet {d.model.block_out_channels})")
    return export_decoder(ema.eval(), sched, Path(cfg.export or out / "ddpm"), extra={
        "trained_steps": state.step, "latent_scale": latent_scale, "window": d.window, "init": cfg.init,
        "seconds_last_chunk": round(time.time() - t0, 1), "train_config": cfg.model_dump(mode="json")})


def main(argv: list[str] | None = None) -> None:
    """``python -m linksim.codecs.lrisc.training CONFIG [OUTPUT_DIR] [--stop-at N]``."""
    import argparse

    p = argparse.ArgumentParser(description="Train one LRISC stage (resumes from OUTPUT_DIR/checkpoint.pt)")
    p.add_argument("config")
    p.add_argument("output_dir", nargs="?")
    p.add_argument("--stop-at", type=int, metavar="STEP")
    a = p.parse_args(argv)
    print(train_lrisc(a.config, a.output_dir, stop_at=a.stop_at))


if __name__ == "__main__":
    main()
