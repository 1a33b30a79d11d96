"""Training of ADJSCC models: ``train_jscc(config, output_dir, resume=True)``.

One run = a strict YAML/pydantic config -> random crops of a corpus -> encoder -> channel (CSNR
drawn uniformly per image) -> decoder -> MSE, with Adam and a learning-rate schedule. The run
checkpoints every ``checkpoint_every`` steps (model, optimiser, scheduler, step, the data and noise
generators' states, loss history) and resumes from the checkpoint bit-for-bit, so a killed run loses
at most ``checkpoint_every`` steps. At the end it writes the weights (safetensors + JSON config), a
loss curve PNG and a PSNR-vs-CSNR table on the held-out images (CSV, also printed).

The embedded corpus is scikit-image's colour photos (:data:`linksim.codecs.images.EMBEDDED_PHOTOS`);
by default ``coffee`` and ``chelsea`` are held out for evaluation and never cropped for training.
Reading and resizing are :mod:`linksim.codecs.images` (shared with the scenarios' loader).
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..configs import StrictModel, TrainRunConfig, load_config
from ..training_loop import TrainState, optimizer_step, resolve_device, run_loop
# the corpus names are re-exported here (part of this module's API since the first trainings)
from ..images import (EMBEDDED_HOLDOUT, EMBEDDED_PHOTOS, embedded_photos, folder_photos, psnr, rescale,
                      resize_center_crop)
from .adjscc import ADJSCC, ADJSCCConfig, awgn_channel, save_model

__all__ = [
    "TrainJSCCConfig", "DataConfig", "ModelConfig", "ChannelConfig", "OptimConfig", "TrainResult",
    "train_jscc", "init_weights", "load_train_config", "embedded_photos", "eval_images", "evaluate_psnr",
    "EMBEDDED_PHOTOS", "EMBEDDED_HOLDOUT",
]


class DataConfig(StrictModel):
    """:param source: ``embedded`` (scikit-image photos) or ``folder`` (png/jpg/bmp, recursive, sorted;
        read as :func:`linksim.codecs.images.folder_photos`)
    :param folder: image folder for ``source: folder``
    :param crop: side of the random training crops [px] (multiple of 4)
    :param scales: each training photo is also resized by these factors (crops then see both
        fine detail and whole-scene structure)
    :param holdout: image names kept out of training, used for evaluation (folders: the relative
        path without extension, ``/`` -> ``__``; the file stem for files at the top level)
    :param eval_size: held-out images are resized (short side, antialiased bilinear) and
        centre-cropped to this side
    """

    source: Literal["embedded", "folder"] = "embedded"
    folder: str | None = None
    crop: int = Field(32, ge=4)
    scales: list[float] = [1.0, 0.5, 0.25, 0.125]
    holdout: list[str] = list(EMBEDDED_HOLDOUT)
    eval_size: int = Field(64, ge=4)

    @model_validator(mode="after")
    def _check(self):
        if self.crop % 4 or self.eval_size % 4:
            raise ValueError("crop and eval_size must be multiples of 4")
        if self.source == "folder" and not self.folder:
            raise ValueError("data.folder is required with source: folder")
        return self


class ModelConfig(StrictModel):
    """:param channels: latent channels ``C`` (CBR ``C/96``)
    :param filters: hidden width ``F``
    :param init: ``kaiming`` (:func:`init_weights` without data: He-normal convs, zero biases),
        ``data`` (:func:`init_weights` with a sample batch: every block starts at unit output RMS)
        or ``default`` (torch's layer defaults). Measured over the first 200 steps (C=4, batch 16,
        lr 1e-3): training PSNR 17.3 / 16.5 / 15.9 dB for kaiming / data / default"""

    channels: int = Field(2, ge=1)
    filters: int = Field(64, ge=1)
    init: Literal["kaiming", "data", "default"] = "kaiming"
    #: ``adjscc`` (x4, CBR C/96) or ``resnet`` (the DiffJSCC stage 1, x16, CBR C/1536,
    #: :mod:`linksim.codecs.jscc.resnet`; ``init: data`` is ADJSCC-only)
    arch: Literal["adjscc", "resnet"] = "adjscc"


def build_model(cfg: ModelConfig) -> ADJSCC:
    """A freshly initialised model of ``cfg.arch`` (``ADJSCC`` or its x16 subclass ``ResNetJSCC``)."""
    if cfg.arch == "resnet":
        from .resnet import ResNetJSCC, ResNetJSCCConfig

        return ResNetJSCC(ResNetJSCCConfig(channels=cfg.channels, filters=cfg.filters))
    return ADJSCC(ADJSCCConfig(channels=cfg.channels, filters=cfg.filters))


class ChannelConfig(StrictModel):
    """:param kind: ``awgn`` (local, exact DESIGN §3 convention) or ``rayleigh``/``ofdm``
        (through :class:`linksim.phy.chains.AnalogChain`, with its estimation and equalisation)
    :param csnr_db: ``[lo, hi]``, CSNR drawn uniformly per image [dB]"""

    kind: Literal["awgn", "rayleigh", "ofdm"] = "awgn"
    csnr_db: tuple[float, float] = (0.0, 14.0)


class OptimConfig(StrictModel):
    """Adam; ``schedule``: ``cosine`` (to ``lr * min_lr_ratio``), ``step`` (x ``gamma`` every
    ``step_size`` steps) or ``constant``."""

    lr: float = Field(1e-3, gt=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    step_size: int = Field(1000, ge=1)
    gamma: float = Field(0.5, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)


class TrainJSCCConfig(TrainRunConfig):
    """A training run (``configs/jscc_*.yaml``): the run fields of
    :class:`~linksim.codecs.configs.TrainRunConfig` (default ``name: adjscc``; ``amp`` matters
    on CUDA only: on CPU bf16 GDN sqrt/division and the power norm lose precision), then:

    :param eval_csnr_db: CSNRs of the final held-out PSNR table [dB]
    :param eval_repeats: noise draws per held-out image and CSNR
    """

    name: str = "adjscc"
    eval_csnr_db: list[float] = [0.0, 5.0, 10.0, 14.0]
    eval_repeats: int = Field(4, ge=1)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    channel: ChannelConfig = ChannelConfig()
    optim: OptimConfig = OptimConfig()


def load_train_config(config) -> TrainJSCCConfig:
    """A config from a YAML path, a dict or a :class:`TrainJSCCConfig` (validated, strict)."""
    return load_config(TrainJSCCConfig, config)


# ---- data ----------------------------------------------------------------------------------------
def _photos(cfg: DataConfig) -> dict[str, torch.Tensor]:
    """The corpus of ``cfg`` as ``{name: [3, H, W] float32 in [0, 1]}`` (held-out images included)."""
    return embedded_photos(EMBEDDED_PHOTOS) if cfg.source == "embedded" else folder_photos(cfg.folder)


def eval_images(cfg: DataConfig) -> torch.Tensor:
    """The held-out images, resized and centre-cropped to ``eval_size``: ``[K, 3, S, S]``."""
    photos = _photos(cfg)
    missing = [n for n in cfg.holdout if n not in photos]
    if missing:
        raise ValueError(f"held-out images not in the corpus: {missing}")
    # bilinear (the scenarios use bicubic): the PSNRs in the shipped weights' JSON were measured so
    size = cfg.eval_size
    return torch.stack([resize_center_crop(photos[n], size, size, mode="bilinear") for n in cfg.holdout])


class CropSampler:
    """Random ``crop``x``crop`` patches with random horizontal flips from a multi-scale corpus.

    :param images: training images ``[3, H, W]`` (each at every scale, those smaller than the crop dropped)
    :param generator: the only source of randomness (its state is checkpointed)
    """

    def __init__(self, images: list[torch.Tensor], crop: int, generator: torch.Generator):
        self.images = [im for im in images if min(im.shape[-2:]) >= crop]
        if not self.images:
            raise ValueError(f"no training image is at least {crop}x{crop}")
        self.crop = crop
        self.generator = generator

    def __call__(self, batch: int) -> torch.Tensor:
        g, c = self.generator, self.crop
        idx = torch.randint(len(self.images), (batch,), generator=g)
        out = torch.empty(batch, 3, c, c)
        for b, i in enumerate(idx.tolist()):
            im = self.images[i]
            top = int(torch.randint(im.shape[1] - c + 1, (1,), generator=g))
            left = int(torch.randint(im.shape[2] - c + 1, (1,), generator=g))
            patch = im[:, top : top + c, left : left + c]
            if float(torch.rand(1, generator=g)) < 0.5:
                patch = patch.flip(-1)
            out[b] = patch
        return out


# ---- channel -------------------------------------------------------------------------------------
def _channel_fn(cfg: ChannelConfig, num_symbols: int, device, generator: torch.Generator):
    if cfg.kind == "awgn":
        return awgn_channel(generator)
    try:
        from linksim.phy.chains import AnalogChain
        from linksim.phy.links import LinkConfig
    except ImportError as err:  # phy/chains.py is developed in parallel
        raise ValueError(f"channel kind {cfg.kind!r} needs linksim.phy.chains.AnalogChain, which is not importable") from err
    chain = AnalogChain(LinkConfig(kind=cfg.kind), num_symbols, device=device)

    def channel(x, csnr_db):
        no = 10.0 ** (-csnr_db.float() / 10.0)
        y_eq, state = chain(x, no, generator)
        return y_eq, state.no_eff

    return channel


# ---- evaluation ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_psnr(model: ADJSCC, images: torch.Tensor, csnr_db: list[float], repeats: int = 4, seed: int = 1234, channel_fn=None) -> dict[float, float]:
    """Mean PSNR [dB] over ``images`` and ``repeats`` noise draws at each CSNR (AWGN by default).

    :param images: ``[K, 3, H, W]`` in [0, 1]
    :return: ``{csnr_db: mean PSNR}``
    """
    dev = next(model.parameters()).device
    images = images.to(dev)
    was_training = model.training
    model.eval()
    g = torch.Generator(device=dev).manual_seed(seed)
    ch = channel_fn or awgn_channel(g)
    out = {}
    for snr in csnr_db:
        vals = [psnr(model(images, ch, float(snr)), images).mean() for _ in range(repeats)]
        out[float(snr)] = float(torch.stack(vals).mean())
    model.train(was_training)
    return out


# ---- training loop -------------------------------------------------------------------------------
class TrainResult(BaseModel):
    """What :func:`train_jscc` returns (paths under ``output_dir``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    weights: Path
    config: Path
    loss_png: Path
    eval_csv: Path
    steps: int
    final_loss: float
    psnr: dict[float, float]
    seconds: float


def _lr_lambda(cfg: TrainJSCCConfig):
    o, n = cfg.optim, cfg.steps
    if o.schedule == "cosine":
        return lambda s: o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(s, n) / n))
    if o.schedule == "step":
        return lambda s: o.gamma ** (s // o.step_size)
    return lambda s: 1.0


@torch.no_grad()
def init_weights(model: ADJSCC, images: torch.Tensor | None = None, csnr_db: float = 7.0, iters: int = 10) -> None:
    """He-normal init (PReLU slope 0.25, zero biases); with ``images``, then data-dependent
    rescaling so every block outputs unit RMS.

    Why: with torch's default (or plain He) init the decoder's sigmoid starts at a constant
    (pre-sigmoid std ~0.01 at 48 filters): every AF module multiplies by ``sigmoid(~0) = 0.5``,
    every stride-2 transposed conv sees only a quarter of its taps, and the defaults shrink the
    variance ~6x per conv+PReLU, so early training crawls. Each conv's weight (biases start at
    zero) is rescaled, block by block on a sample batch, until its block's output (after
    GDN/IGDN, PReLU and AF) has RMS 1; the output conv is scaled to pre-sigmoid RMS 1. Like
    LSUV init (Mishkin & Matas 2016); written here because no library does it for this layout.

    :param images: a sample batch ``[B, 3, H, W]`` in ``[0, 1]``; ``None``: He-normal only
    :param csnr_db: CSNR fed to the AF modules during the fit [dB]
    :param iters: rescaling passes per block (GDN and the AF gate make the scale nonlinear; 10
        passes reach RMS 1 within 2 %)
    """
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            mode = "fan_out" if isinstance(m, torch.nn.ConvTranspose2d) else "fan_in"
            torch.nn.init.kaiming_normal_(m.weight, a=0.25, mode=mode)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    if images is None:
        return
    b = images.shape[0]
    snr = torch.full((b, 1), float(csnr_db), dtype=images.dtype, device=images.device)

    def fit(conv, block, x):
        for _ in range(iters):
            conv.weight.mul_(1.0 / block(x).square().mean().sqrt().clamp_min(1e-8))
        return block(x)

    enc, dec = model.encoder, model.decoder
    x = images
    for i in range(4):
        x = fit(enc.convs[i], lambda t, i=i: enc.af[i](enc.acts[i](enc.norms[i](enc.convs[i](t))), snr), x)
    sym = model.encode(images, snr.reshape(b))  # last encoder conv: scale irrelevant (power norm)
    z = model.unpair(sym, images.shape[-2] // model.downsampling, images.shape[-1] // model.downsampling)
    for i in range(5):
        z = fit(dec.convs[i], lambda t, i=i: dec.af[i](dec.acts[i](dec.norms[i](dec.convs[i](t))), snr), z)
    fit(dec.out_conv, lambda t: dec.out_conv(F.pad(t, (3, 3, 3, 3), mode="reflect")), z)




def _plot_loss(losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=0.5, alpha=0.4, label="batch MSE")
    if len(losses) >= 20:
        k = max(len(losses) // 50, 5)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train_jscc(
    config, output_dir: str | Path | None = None, resume: bool = True, progress: bool = True, stop_at: int | None = None
) -> TrainResult | None:
    """Train an ADJSCC model.

    :param config: YAML path, dict or :class:`TrainJSCCConfig`
    :param output_dir: where checkpoint, weights, loss curve and evaluation go (default:
        ``config.output``, else ``runs/<name>``)
    :param resume: continue from ``output_dir/checkpoint.pt`` when it exists
    :param progress: show a tqdm progress bar
    :param stop_at: checkpoint and return ``None`` once this step is reached (train in chunks;
        a later call with ``resume=True`` continues exactly where this one stopped)
    :return: :class:`TrainResult` (files: ``model.safetensors`` + ``model.json``, ``loss.png``,
        ``eval.csv``, ``checkpoint.pt``, ``config.yaml``)
    """
    cfg = load_train_config(config)
    out = Path(output_dir or cfg.output or f"runs/{cfg.name}")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    t0 = time.time()

    torch.manual_seed(cfg.seed)  # parameter initialisation only; data and noise use own generators
    model = build_model(cfg.model)
    photos = _photos(cfg.data)
    train = [rescale(im, s) for name, im in photos.items() if name not in cfg.data.holdout for s in cfg.data.scales]
    if cfg.model.init == "kaiming":
        init_weights(model)
    elif cfg.model.init == "data":  # own generator: the training data stream does not depend on it
        init_weights(model, CropSampler(train, cfg.data.crop, torch.Generator().manual_seed(cfg.seed + 3))(64))
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)

    sampler = CropSampler(train, cfg.data.crop, data_gen)
    n_sym = model.num_symbols(cfg.data.crop, cfg.data.crop)
    channel = _channel_fn(cfg.channel, n_sym, device, noise_gen)
    lo, hi = cfg.channel.csnr_db

    state = TrainState({"model": model}, {"optimizer": opt}, {"scheduler": sched},
                       {"data_rng": data_gen, "noise_rng": noise_gen})
    use_amp = cfg.amp and device.type == "cuda"

    def step(_s: int) -> float:
        x = sampler(cfg.batch_size).to(device)
        csnr = lo + (hi - lo) * torch.rand(cfg.batch_size, generator=noise_gen, device=device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            x_hat = model(x, channel, csnr)
        return optimizer_step(F.mse_loss(x_hat.float(), x), opt, sched)

    model.train()
    if not run_loop(cfg, out, state, step, resume=resume, progress=progress, stop_at=stop_at, device=device):
        return None
    step, losses = state.step, state.losses

    model.eval()
    psnr = evaluate_psnr(model, eval_images(cfg.data), cfg.eval_csnr_db, cfg.eval_repeats, seed=cfg.seed + 2)
    weights = out / "model.safetensors"
    save_model(model, weights, extra={"trained_steps": step, "holdout": list(cfg.data.holdout),
                                      "eval_size": cfg.data.eval_size,
                                      "psnr_awgn_holdout": {str(k): round(v, 3) for k, v in psnr.items()}})
    eval_csv = out / "eval.csv"
    with eval_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["channel", "csnr_db", "psnr_db", "images", "size"])
        for k, v in psnr.items():
            w.writerow(["awgn", k, f"{v:.3f}", "+".join(cfg.data.holdout), cfg.data.eval_size])
    loss_png = out / "loss.png"
    _plot_loss(losses, loss_png, f"{cfg.name} (C={cfg.model.channels}, F={cfg.model.filters})")
    if progress:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{cfg.name}: PSNR on held-out {', '.join(cfg.data.holdout)} (AWGN)")
        table.add_column("CSNR [dB]")
        table.add_column("PSNR [dB]")
        for k, v in psnr.items():
            table.add_row(f"{k:g}", f"{v:.2f}")
        Console().print(table)
    return TrainResult(weights=weights, config=weights.with_suffix(".json"), loss_png=loss_png, eval_csv=eval_csv,
                       steps=step, final_loss=losses[-1] if losses else float("nan"), psnr=psnr, seconds=time.time() - t0)


def export_embedded(run_dir: str | Path, dest_dir: str | Path | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Copy a run's weights into ``codecs/jscc/embedded/adjscc_c{C}.safetensors`` (+ .json).

    A finished run exports ``model.safetensors``; a run stopped early exports its latest
    ``checkpoint.pt`` (``trained_steps`` then says how far it got).

    Stored in ``dtype`` (float16 halves the repository size); the PSNR table is re-measured with the
    stored (rounded) weights, so the numbers in the JSON are those of the shipped file.
    """
    from .adjscc import EMBEDDED_DIR
    from .checkpoint import load_model

    run_dir = Path(run_dir)
    cfg = load_train_config(run_dir / "config.yaml")
    if (run_dir / "model.safetensors").is_file():
        model, steps = load_model(run_dir / "model.safetensors"), cfg.steps
    else:  # a run stopped early: export its latest checkpoint
        ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
        model = build_model(cfg.model)
        model.load_state_dict(ck["model"])
        model.eval()
        steps = int(ck["step"])
    dest = Path(dest_dir or EMBEDDED_DIR) / f"{cfg.model.arch}_c{model.channels}.safetensors"
    meta = {"trained_steps": steps, "train_config": cfg.model_dump(mode="json"),
            "retrain": f"see the header of configs/{cfg.name}.yaml; in short: python -m linksim.codecs.jscc.training "
                       f"configs/{cfg.name}.yaml runs/{cfg.name} && python -m linksim.codecs.jscc.training --export runs/{cfg.name}",
            "holdout": list(cfg.data.holdout), "eval_size": cfg.data.eval_size, "stored_dtype": str(dtype)}
    save_model(model, dest, dtype=dtype, extra=meta)
    shipped = load_model(dest)
    psnr = evaluate_psnr(shipped, eval_images(cfg.data), cfg.eval_csnr_db, cfg.eval_repeats, seed=cfg.seed + 2)
    meta["psnr_awgn_holdout"] = {f"{k:g}": round(v, 2) for k, v in psnr.items()}
    save_model(model, dest, dtype=dtype, extra=meta)
    return dest


def main(argv: list[str] | None = None) -> None:
    """``python -m linksim.codecs.jscc.training CONFIG.yaml [OUTPUT_DIR]`` or ``--export RUN_DIR``."""
    import argparse

    p = argparse.ArgumentParser(description="Train an ADJSCC model (resumes from OUTPUT_DIR/checkpoint.pt)")
    p.add_argument("config", nargs="?")
    p.add_argument("output_dir", nargs="?")
    p.add_argument("--export", metavar="RUN_DIR", help="copy a finished run into codecs/jscc/embedded/")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--stop-at", type=int, metavar="STEP", help="checkpoint and stop at this step (train in stages)")
    a = p.parse_args(argv)
    if a.export:
        print(export_embedded(a.export))
        return
    if not a.config:
        p.error("CONFIG is required")
    train_jscc(a.config, a.output_dir, resume=not a.no_resume, stop_at=a.stop_at)


if __name__ == "__main__":
    main()
