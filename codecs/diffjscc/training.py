"""Training of the embedded DiffJSCC refiner: ``train_diffjscc(config, output_dir, resume=True)``.

One run = a strict YAML/pydantic config -> random crops of the embedded corpus (held-out photos
never cropped) -> a frozen stage-1 JSCC per image (one of ``stage1.cbrs``, drawn per image) over
AWGN at a CSNR drawn uniformly in ``channel.csnr_db`` -> the stage-1 reconstruction ``x_s1`` ->
the conditional ``UNet2DModel`` of :mod:`.pixel` trained with an MSE on
``x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε`` given ``[x_t ‖ x_s1]`` and the CSNR: the paper's (and SD's) ε target
(``prediction_type: epsilon``), or ``sample`` (x0) / ``v_prediction`` (v = √ᾱ ε − √(1−ᾱ) x0),
diffusers' three parametrisations, which the DDIM sampler reads from the exported scheduler. As the paper's stage 2, only the
refiner is trained (the JSCC stays frozen). AdamW with warm-up, gradient clipping, EMA;
checkpoint/resume bit-for-bit (model, EMA, optimiser, step, data/noise generator states, losses);
sample grids (rows: original / stage 1 / refined, EMA weights, DDIM) every ``sample.every`` steps.
The sections ``model``, ``schedule``, ``optim``, ``sample`` are those of the DDPM prior training
(:mod:`linksim.codecs.diffusion.training`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from ..configs import Count, StrictModel, TrainRunConfig, load_config
from ..diffusion.training import (PriorOptimConfig, SampleConfig, ScheduleConfig, UNetConfig,
                                  scheduler_config, training_images, training_target)
from ..jscc.adjscc import awgn_channel, parse_cbr
from ..jscc.training import CropSampler, DataConfig, _plot_loss
from ..training_loop import TrainState, ema_update, optimizer_step, resolve_device, run_loop
from .pixel import EMBEDDED_DDPM_DIR, PixelRefiner, build_conditional_unet, ddim_scheduler

__all__ = ["TrainDiffJSCCConfig", "Stage1Config", "load_diffjscc_train_config", "train_diffjscc", "export_refiner",
           "export_run"]


class Stage1Config(StrictModel):
    """:param jscc: the frozen stage-1 models, as ``kind: jscc``'s ``model`` (``embedded_resnet``:
        the project's ResNet JSCC per CBR)
    :param cbrs: the CBRs whose stage-1 reconstructions the refiner learns from (one model serves all)"""

    jscc: str = "embedded_resnet"
    cbrs: list[str] = ["1/384", "1/96"]

    @field_validator("cbrs")
    @classmethod
    def _cbrs(cls, v):
        for c in v:
            parse_cbr(c)
        if not v:
            raise ValueError("stage1.cbrs needs at least one CBR")
        return v


class RefinerChannelConfig(StrictModel):
    """:param csnr_db: ``[lo, hi]`` CSNR drawn uniformly per image [dB] (AWGN), the paper's 0–14 dB"""

    csnr_db: tuple[float, float] = (0.0, 14.0)


class TrainDiffJSCCConfig(TrainRunConfig):
    """A refiner training run (``configs/diffjscc_embedded.yaml``).

    :param data: corpus and crops (``crop`` = the stage-1 input side: a multiple of 16)
    :param refiner_crop: the refiner trains on random ``refiner_crop`` sub-crops of each image and
        its stage-1 decode (same window; the UNet is convolutional, so it runs at any size): on the
        2-core CPU a 64 px step costs ~9x a 32 px one (attention), while the stage-1 decode needs
        64 px inputs (a 4x4 latent; 32 px = 2x2 symbols per channel only)
    :param stage1: the frozen JSCC models
    :param channel: the CSNR range
    :param export_dtype: stored weight dtype of the exported refiner
    :param prediction_type: what the UNet learns to output: ``epsilon`` (the paper's stage 2 on SD,
        and the default), ``sample`` (x̂0) or ``v_prediction``. The ε loss weighs the condition
        little where it matters most: at large t, ε ≈ x_t and an error δ in x̂0 costs only
        ``ᾱ/(1−ᾱ)·δ²``, so a small model trained for minutes learns to ignore the stage-1 decode
        (the shipped ε model did, issue 15); x0 or v weigh that term fully (see the model README
        for which the embedded refiner uses and how that was chosen).
    """

    name: str = "diffjscc_embedded"
    steps: Count = 4000
    batch_size: Count = 16
    checkpoint_every: Count = 200
    export_dtype: str = "float16"
    data: DataConfig = DataConfig(crop=64)
    refiner_crop: int = Field(32, ge=8)
    stage1: Stage1Config = Stage1Config()
    channel: RefinerChannelConfig = RefinerChannelConfig()
    model: UNetConfig = UNetConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    optim: PriorOptimConfig = PriorOptimConfig()
    sample: SampleConfig = SampleConfig(every=1000, count=8, steps=50)
    eval_steps: int = Field(50, ge=1)
    prediction_type: Literal["epsilon", "sample", "v_prediction"] = "epsilon"


def load_diffjscc_train_config(config) -> TrainDiffJSCCConfig:
    """A config from a YAML path, a dict or a :class:`TrainDiffJSCCConfig` (validated, strict)."""
    return load_config(TrainDiffJSCCConfig, config)


def _stage1_models(cfg: TrainDiffJSCCConfig, device) -> list:
    from ..jscc.method import load_jscc

    models = [load_jscc(cfg.stage1.jscc, parse_cbr(c), device).requires_grad_(False) for c in cfg.stage1.cbrs]
    for m in models:
        if cfg.data.crop % m.downsampling:
            raise ValueError(f"data.crop {cfg.data.crop} must be a multiple of the stage-1 down-sampling {m.downsampling}")
    return models


@torch.no_grad()
def stage1_reconstruct(models: list, x: torch.Tensor, csnr_db: torch.Tensor, which: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """Stage-1 decode of every image of ``x`` ``[B, 3, H, W]`` by ``models[which[b]]`` over AWGN at ``csnr_db[b]``."""
    out = torch.empty_like(x)
    channel = awgn_channel(generator)
    for k, m in enumerate(models):
        sel = (which == k).nonzero().reshape(-1)
        if sel.numel():
            out[sel] = m(x[sel], channel, csnr_db[sel]).clamp(0, 1)
    return out


def _subcrop(x: torch.Tensor, x1: torch.Tensor, size: int, generator: torch.Generator):
    """The same random ``size`` window of each image and of its stage-1 decode."""
    if size == x.shape[-1] and size == x.shape[-2]:
        return x, x1
    b, _, h, w = x.shape
    top = torch.randint(h - size + 1, (b,), generator=generator, device=generator.device).tolist()
    left = torch.randint(w - size + 1, (b,), generator=generator, device=generator.device).tolist()
    xs = torch.stack([x[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(top, left))])
    x1s = torch.stack([x1[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(top, left))])
    return xs, x1s


def _save_rows(rows: list[torch.Tensor], path: Path) -> None:
    from torchvision.utils import save_image

    save_image(torch.cat(rows), path, nrow=rows[0].shape[0], padding=1)


def train_diffjscc(config, output_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                   stop_at: int | None = None) -> Path | None:
    """Train the embedded refiner; returns the exported directory (``output_dir/ddpm``) or ``None``
    when stopped early at ``stop_at`` (a later call resumes from ``checkpoint.pt``)."""
    cfg = load_diffjscc_train_config(config)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(cfg, output_dir, resume, progress, stop_at)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TrainDiffJSCCConfig, output_dir, resume: bool, progress: bool, stop_at: int | None):
    out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
    device = resolve_device(cfg.device)

    torch.manual_seed(cfg.seed)  # parameter initialisation only
    if cfg.refiner_crop > cfg.data.crop:
        raise ValueError(f"refiner_crop {cfg.refiner_crop} exceeds data.crop {cfg.data.crop}")
    unet = build_conditional_unet(cfg.model, cfg.refiner_crop).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False).eval()
    sched = scheduler_config(cfg.schedule, cfg.prediction_type)
    abar = ddim_scheduler(sched).alphas_cumprod.to(device, torch.float32)
    T = abar.numel()
    models = _stage1_models(cfg, device)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    warm = cfg.optim.warmup
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    sampler = CropSampler(training_images(cfg.data), cfg.data.crop, data_gen)
    lo, hi = cfg.channel.csnr_db
    state = TrainState({"model": unet, "ema": ema}, {"optimizer": opt}, {"scheduler": lr_sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})

    def grid(path: Path) -> None:
        # fixed training crops, one row per stage; own generators so the run's streams are untouched
        g = torch.Generator().manual_seed(cfg.seed + 2)
        x = CropSampler(sampler.images, cfg.data.crop, g)(cfg.sample.count).to(device)
        snr = torch.full((x.shape[0],), 0.5 * (lo + hi), device=device)
        which = torch.arange(x.shape[0], device=device) % len(models)
        gd = torch.Generator(device=device).manual_seed(cfg.seed + 3)
        x1 = stage1_reconstruct(models, x, snr, which, gd)
        ref = PixelRefiner(ema, sched).refine(x1, snr, cfg.sample.steps, generator=gd)
        _save_rows([x.cpu(), x1.cpu(), ref.cpu()], path)

    net = PixelRefiner(unet, sched)

    def step(_s: int) -> float:
        b = cfg.batch_size
        x = sampler(b).to(device)
        snr = lo + (hi - lo) * torch.rand(b, generator=noise_gen, device=device)
        which = torch.randint(len(models), (b,), generator=noise_gen, device=device)
        x1 = stage1_reconstruct(models, x, snr, which, noise_gen)
        x, x1 = _subcrop(x, x1, cfg.refiner_crop, noise_gen)
        t = torch.randint(T, (b,), generator=noise_gen, device=device)
        noise = torch.randn(x.shape, generator=noise_gen, device=device)
        a = abar[t].reshape(b, 1, 1, 1)
        x0 = x * 2 - 1
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = training_target(cfg.prediction_type, x0, noise, a)
        return optimizer_step(F.mse_loss(net.eps(x_t, t, x1 * 2 - 1, snr), target), opt, lr_sched, unet.parameters(),
                              cfg.optim.grad_clip)

    def after_step(done: int) -> None:
        ema_update(ema, unet, cfg.optim.ema_decay, done)
        if cfg.sample.every and done % cfg.sample.every == 0 and done < cfg.steps:
            grid(out / f"samples_{done:07d}.png")

    unet.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device,
                    on_step=after_step):
        return None
    grid(out / "samples.png")
    _plot_loss(state.losses, out / "loss.png", f"{cfg.name}: {cfg.prediction_type}-MSE (conditional UNet {cfg.model.block_out_channels})")
    return export_run(out, out / "ddpm")


def export_refiner(ema_unet, sched: dict, dest: str | Path, dtype: str = "float16", extra: dict | None = None) -> Path:
    """Write the refiner as a diffusers directory (``config.json``, safetensors in ``dtype``,
    ``scheduler_config.json``, ``training.json``) readable by :func:`.pixel.load_pixel_refiner`."""
    from diffusers import DDPMScheduler

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(ema_unet).to("cpu", getattr(torch, dtype)).save_pretrained(dest, safe_serialization=True)
    DDPMScheduler(**sched).save_pretrained(dest)
    (dest / "training.json").write_text(json.dumps(extra or {}, indent=1))
    return dest


def export_run(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Export the EMA weights of a run's latest checkpoint (default: the embedded directory)."""
    run_dir = Path(run_dir)
    cfg = load_diffjscc_train_config(run_dir / "config.yaml")
    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    ema = build_conditional_unet(cfg.model, cfg.refiner_crop)
    ema.load_state_dict(ck["ema"])
    losses = ck["losses"][-100:]
    return export_refiner(ema.eval(), scheduler_config(cfg.schedule, cfg.prediction_type), dest or EMBEDDED_DDPM_DIR, cfg.export_dtype, extra={
        "trained_steps": int(ck["step"]), "batch_size": cfg.batch_size,
        "final_loss_mean_100": sum(losses) / max(len(losses), 1), "train_config": cfg.model_dump(mode="json"),
    })


def main(argv: list[str] | None = None) -> None:
    """``python -m linksim.codecs.diffjscc.training CONFIG [OUTPUT_DIR] [--stop-at N]`` or ``--export RUN_DIR``."""
    import argparse

    p = argparse.ArgumentParser(description="Train the embedded DiffJSCC refiner (resumes from OUTPUT_DIR/checkpoint.pt)")
    p.add_argument("config", nargs="?")
    p.add_argument("output_dir", nargs="?")
    p.add_argument("--export", metavar="RUN_DIR", help="copy a run's EMA weights into codecs/diffjscc/embedded/ddpm")
    p.add_argument("--stop-at", type=int, metavar="STEP")
    a = p.parse_args(argv)
    if a.export:
        print(export_run(a.export))
        return
    if not a.config:
        p.error("CONFIG is required")
    train_diffjscc(a.config, a.output_dir, stop_at=a.stop_at)


if __name__ == "__main__":
    main()
