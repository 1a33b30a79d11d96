"""Trainings of GESCO's embedded models: ``train_gesco`` and ``train_segmenter``.

**GESCO** (``linksim train gesco CONFIG``): the :class:`~.model.SemanticUNet` learns ε on
procedural scenes (``scenes.seed`` differs from every shipped scenario's seed, so no evaluated
scene is ever seen). Per batch:

* *noisy training* (``noisy_training: true``, the paper's): one σ drawn from
  :data:`~.semantic.NOISY_TRAINING_SIGMAS` (three of nine clean) and ``σ·N(0, 1)`` added onto
  the sent maps (present classes + edge map, :func:`~.semantic.paper_channel`); ``false``
  trains on clean maps only (the ablation's "no noisy training" model);
* *label dropout*: each example's condition is replaced by the all-zero map with probability
  ``label_dropout`` (the unconditional branch of classifier-free guidance);
* random horizontal flips of image, labels and instances together;
* ε-MSE with diffusers' ``DDPMScheduler`` (linear betas, T = 1000), AdamW with warm-up, gradient
  clipping, EMA of the weights (``min(decay, (1+s)/(10+s))``).

Checkpoints every ``checkpoint_every`` steps (model, EMA, optimiser, generators, losses) resume
exactly. At the end (and every ``sample_every`` steps): a sample grid — label maps of held-out
scenes (seed ``scenes.seed + 1``) above the scenes generated from them with CFG — and the EMA
weights exported as fp16 safetensors + JSON (:func:`~.method.load_gesco` reads them).

**Segmenter** (``linksim train segmenter CONFIG``): :class:`~.segmenter.Segmenter` with
cross-entropy on clean scenes (flips), AdamW; the held-out mIoU (seed ``scenes.seed + 1``) is
measured at the end and written into the exported JSON.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from ..configs import Count, TrainRunConfig, load_config
from ..configs import StrictModel as _Strict
from ..jscc.training import _plot_loss
from ..training_loop import TrainState, ema_update, optimizer_step, resolve_device, run_loop
from .model import SemanticUNet, SemanticUNetConfig, clean_up
from .scenes import NUM_CLASSES, colorize, scene_set
from .segmenter import EMBEDDED_DIR, Segmenter, SegmenterConfig, save_segmenter
from .sampler import scheduler_kwargs
from .semantic import NOISY_TRAINING_SIGMAS, condition, paper_channel, present_classes

__all__ = ["SceneDataConfig", "TrainGescoConfig", "TrainSegmenterConfig", "train_gesco", "train_segmenter",
           "GescoTrainResult", "SegmenterTrainResult", "export_gesco", "confusion", "miou_from_confusion"]


class SceneDataConfig(_Strict):
    """Training scenes: ``count`` scenes of ``seed`` rendered once at ``size`` ``[H, W]``."""

    size: tuple[int, int] = (32, 64)
    count: Count = 4000
    seed: int = 101


class GescoOptimConfig(_Strict):
    lr: float = Field(3e-4, gt=0)
    warmup: int = Field(200, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)


class TrainGescoConfig(TrainRunConfig):
    """A GESCO training run (``configs/gesco_*.yaml``).

    :param noisy_training: the paper's σ schedule per batch (else clean maps only)
    :param fds_training: show the network the maps as the receiver gives them, FDS-processed
        (:func:`.model.clean_up`) after the training noise; off in the paper (FDS is a receiver
        block there), on for the ``embedded_fds`` model that tests a train/test mismatch
    :param label_dropout: probability of the all-zero (unconditional) map per example
    :param sample_every: steps between sample grids (``None``: only at the end)
    :param guidance: CFG scale of the sample grids
    :param sample_steps: DDIM steps of the sample grids
    :param prediction: network target: ``epsilon`` (the paper's ADM) or ``v_prediction``
        (``v = √ᾱ·ε − √(1−ᾱ)·x0``, Salimans & Ho 2022; the embedded model's choice: a small model
        trained for minutes learns the label-to-layout mapping at large ``t`` far sooner with it,
        where ε-prediction must be accurate to 1/√ᾱ_T ≈ 150x to give a usable ``x̂0``)
    :param export: exported weight file (``.safetensors``; ``None``: ``<run>/gesco.safetensors``)
    """

    name: str = "gesco"
    steps: Count = 3000
    batch_size: Count = 16
    checkpoint_every: Count = 200
    amp: bool = False
    noisy_training: bool = True
    fds_training: bool = False
    label_dropout: float = Field(0.2, ge=0, lt=1)
    sample_every: int | None = Field(1000, ge=1)
    guidance: float = 2.0
    sample_steps: Count = 50
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"
    export: str | None = None
    data: SceneDataConfig = SceneDataConfig()
    model: SemanticUNetConfig = SemanticUNetConfig()
    optim: GescoOptimConfig = GescoOptimConfig()


class TrainSegmenterConfig(TrainRunConfig):
    """A segmenter training run (``configs/segmenter_*.yaml``); ``export`` as in :class:`TrainGescoConfig`."""

    name: str = "segmenter"
    steps: Count = 1500
    batch_size: Count = 16
    checkpoint_every: Count = 200
    amp: bool = False
    lr: float = Field(2e-3, gt=0)
    heldout: Count = 200
    export: str | None = None
    data: SceneDataConfig = SceneDataConfig()
    model: SegmenterConfig = SegmenterConfig()


class _Batches:
    """Random batches of the pre-rendered training scenes, flipped at random (seeded)."""

    def __init__(self, data: SceneDataConfig, generator: torch.Generator):
        h, w = data.size
        self.s = scene_set(h, w, data.count, data.seed)
        self.g = generator

    def __call__(self, b: int):
        idx = torch.randint(len(self.s.names), (b,), generator=self.g)
        flip = torch.rand(b, generator=self.g) < 0.5
        x, lab, inst = self.s.images[idx], self.s.labels[idx], self.s.instances[idx]
        f = flip[:, None, None]
        return (torch.where(f[:, None], x.flip(-1), x), torch.where(f, lab.flip(-1), lab),
                torch.where(f, inst.flip(-1), inst))


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[K, K]`` confusion counts (rows: target, columns: prediction); targets ``>= K`` are ignored."""
    ok = target < num_classes
    idx = target[ok].long() * num_classes + pred[ok].long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou_from_confusion(conf: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(mean IoU over classes present in target or prediction, per-class IoU [K] (nan: absent))``."""
    conf = conf.double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))
    valid = ~iou.isnan()
    return (float(iou[valid].mean()) if valid.any() else float("nan")), iou


# ----------------------------------------------------------------------------- GESCO
class GescoTrainResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    export: Path
    samples_png: Path
    loss_png: Path
    steps: int
    final_loss: float
    seconds: float


def export_gesco(ema: SemanticUNet, path: str | Path, extra: dict, prediction: str = "epsilon") -> Path:
    """EMA weights as fp16 safetensors + ``.json`` (model config, scheduler, ``extra``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in ema.state_dict().items()}, str(path))
    meta = {"model": ema.config.model_dump(), "scheduler": scheduler_kwargs(prediction), **extra}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def train_gesco(config, output_dir=None, resume: bool = True, progress: bool = True,
                stop_at: int | None = None) -> GescoTrainResult | None:
    """Train the semantic diffusion model (module notes); ``None`` when stopped at ``stop_at``."""
    cfg = load_config(TrainGescoConfig, config)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train_gesco(cfg, output_dir, resume, progress, stop_at)
    finally:
        torch.set_num_threads(threads)


def _train_gesco(cfg: TrainGescoConfig, output_dir, resume, progress, stop_at):
    from diffusers import DDPMScheduler

    out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
    device = resolve_device(cfg.device)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    net = SemanticUNet(cfg.model).to(device)
    ema = copy.deepcopy(net).requires_grad_(False).eval()
    sched = DDPMScheduler(**scheduler_kwargs(cfg.prediction))
    acp = sched.alphas_cumprod.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr)
    warm = cfg.optim.warmup
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    batches = _Batches(cfg.data, data_gen)
    state = TrainState({"model": net, "ema": ema}, {"optimizer": opt}, {"scheduler": lr_sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})
    export = Path(cfg.export) if cfg.export else out / "gesco.safetensors"

    def grid(path: Path) -> None:
        from .sampler import GescoSampler

        h, w = cfg.data.size
        held = scene_set(h, w, 8, cfg.data.seed + 1)
        cond = condition(held.labels, held.instances, cfg.model.label_nc - 1).to(device)
        g = torch.Generator().manual_seed(cfg.seed + 2)
        x = GescoSampler(ema, guidance=cfg.guidance, num_steps=cfg.sample_steps,
                         scheduler=scheduler_kwargs(cfg.prediction)).sample(cond, g).cpu()
        from torchvision.utils import save_image

        save_image(torch.cat([colorize(held.labels), x, held.images]), path, nrow=8, padding=1)

    last = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    k = cfg.model.label_nc - 1

    def step(_s: int) -> float:
        x, lab, inst = batches(cfg.batch_size)
        x0 = x.to(device) * 2 - 1
        cond = condition(lab, inst, k).to(device)
        if cfg.noisy_training:
            sigma = NOISY_TRAINING_SIGMAS[int(torch.randint(len(NOISY_TRAINING_SIGMAS), (1,), generator=noise_gen))]
            cond = paper_channel(cond, present_classes(lab, k).to(device), sigma, noise_gen)
        if cfg.fds_training:
            cond = clean_up(cond, present_classes(lab, k).to(device), use_fds=True)
        drop = torch.rand(cfg.batch_size, generator=noise_gen) < cfg.label_dropout
        cond = cond * (~drop).float()[:, None, None, None].to(device)
        t = torch.randint(sched.config.num_train_timesteps, (cfg.batch_size,), generator=noise_gen)
        noise = torch.randn(x0.shape, generator=noise_gen).to(device)
        a = acp[t.to(device)].float()[:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise  # = DDPMScheduler.add_noise
        target = noise if cfg.prediction == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x0
        return optimizer_step(F.mse_loss(net(x_t, t.to(device), cond), target), opt, lr_sched, net.parameters(),
                              cfg.optim.grad_clip)

    def after_step(done: int) -> None:
        ema_update(ema, net, cfg.optim.ema_decay, done)
        if cfg.sample_every and done % cfg.sample_every == 0 and done < cfg.steps:
            grid(out / f"samples_{done:07d}.png")
        if done % cfg.checkpoint_every == 0 or done == last:  # the exported weights follow the checkpoints
            recent = state.losses[-100:]
            export_gesco(ema, export, {"trained_steps": done, "train_config": cfg.model_dump(mode="json"),
                                       "final_loss_mean_100": sum(recent) / max(len(recent), 1)}, cfg.prediction)

    net.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device,
                    on_step=after_step):
        return None
    losses = state.losses
    samples = out / "samples.png"
    grid(samples)
    loss_png = out / "loss.png"
    _plot_loss(losses, loss_png, f"{cfg.name}: eps-MSE (SPADE UNet {cfg.model.channels}, {cfg.data.size})")
    return GescoTrainResult(export=export, samples_png=samples, loss_png=loss_png, steps=state.step,
                            final_loss=losses[-1] if losses else float("nan"), seconds=time.time() - t0)


# ----------------------------------------------------------------------------- segmenter
class SegmenterTrainResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    export: Path
    loss_png: Path
    steps: int
    heldout_miou: float
    seconds: float


def train_segmenter(config, output_dir=None, resume: bool = True, progress: bool = True,
                    stop_at: int | None = None) -> SegmenterTrainResult | None:
    """Train the mIoU segmenter (module notes); ``None`` when stopped at ``stop_at``."""
    cfg = load_config(TrainSegmenterConfig, config)
    threads = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train_segmenter(cfg, output_dir, resume, progress, stop_at)
    finally:
        torch.set_num_threads(threads)


def heldout_miou(net: Segmenter, data: SceneDataConfig, count: int) -> float:
    """mIoU (pooled confusion) of ``net`` on ``count`` clean scenes of seed ``data.seed + 1``."""
    h, w = data.size
    held = scene_set(h, w, count, data.seed + 1)
    conf = torch.zeros(net.config.num_classes, net.config.num_classes, dtype=torch.long)
    dev = next(net.parameters()).device
    for i in range(0, count, 50):
        pred = net.predict(held.images[i:i + 50].to(dev)).cpu()
        conf += confusion(pred, held.labels[i:i + 50], net.config.num_classes)
    return miou_from_confusion(conf)[0]


def _train_segmenter(cfg: TrainSegmenterConfig, output_dir, resume, progress, stop_at):
    out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
    device = resolve_device(cfg.device)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    net = Segmenter(cfg.model).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    lr_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    data_gen = torch.Generator().manual_seed(cfg.seed)
    batches = _Batches(cfg.data, data_gen)
    state = TrainState({"model": net}, {"optimizer": opt}, {"scheduler": lr_sched}, {"data_rng": data_gen})

    def step(_s: int) -> float:
        x, lab, _ = batches(cfg.batch_size)
        return optimizer_step(F.cross_entropy(net(x.to(device)), lab.to(device)), opt, lr_sched)

    net.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device):
        return None
    step, losses = state.step, state.losses
    net.eval()
    miou = heldout_miou(net, cfg.data, cfg.heldout)
    export = Path(cfg.export) if cfg.export else out / "segmenter.safetensors"
    save_segmenter(net, export, {"trained_steps": step, "heldout_miou": miou, "heldout_seed": cfg.data.seed + 1,
                                 "heldout_scenes": cfg.heldout, "train_config": cfg.model_dump(mode="json")})
    loss_png = out / "loss.png"
    _plot_loss(losses, loss_png, f"{cfg.name}: cross-entropy")
    return SegmenterTrainResult(export=export, loss_png=loss_png, steps=step, heldout_miou=miou, seconds=time.time() - t0)


__all__ += ["EMBEDDED_DIR", "heldout_miou", "scheduler_kwargs"]
