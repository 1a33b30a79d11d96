"""The checkpointed optimisation loop the trainings share: state, resume, progress, chunks.

A training describes *what* one step does (a function ``step_fn(step) -> loss``); this module does
the rest the same way for every training: it writes the resolved config, restores every module,
optimiser, LR scheduler and random generator from ``checkpoint.pt`` when resuming (so a resumed
run continues bit-for-bit on CPU), shows a progress bar, checkpoints every ``checkpoint_every``
steps and at the stop step (atomically: a kill mid-write never leaves a broken file), and returns
whether the planned ``steps`` were reached (``stop_at`` trains in chunks).

Every training runs on it: ADJSCC and the ResNet JSCC (:mod:`linksim.codecs.jscc.training`), the
diffusion prior, the DiffJSCC refiner, GESCO and its segmenter, and the LRISC stages. The
checkpoint layout (``model``/``ema``/``optimizer``/``scheduler``/``data_rng``/``noise_rng``/``step``/
``losses``/``config``) is the one the trainings wrote before they shared this loop, so a run
checkpointed then resumes here. The ports were checked against the old loops: the same tiny runs
gave bit-identical losses and weights.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import yaml

__all__ = ["TrainState", "run_loop", "optimizer_step", "ema_update", "save_checkpoint", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda`` (``ValueError`` when it is missing)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but CUDA is not available")
    return torch.device(name)


def optimizer_step(loss: torch.Tensor, opt, sched, params=None, grad_clip: float | None = None) -> float:
    """One optimiser step on ``loss``: backward, gradients clipped to global norm ``grad_clip``
    (``None``: not clipped; ``params``: what is clipped), ``opt`` then ``sched`` stepped.

    :output: the loss as a float (what :func:`run_loop`'s ``step_fn`` returns)
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()
    return loss.item()


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, max_decay: float, step: int) -> None:
    """Move ``ema`` towards ``model`` after optimisation step ``step`` (1-based: steps done), with the
    warm-up decay ``min(max_decay, (1 + step) / (10 + step))``; buffers are copied. A few lines
    instead of diffusers' EMAModel: the state stays a plain module, checkpointed as such."""
    decay = min(max_decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary file, then an atomic rename."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


@dataclass
class TrainState:
    """Everything a run checkpoints.

    :param modules: ``{key: nn.Module}`` (``model``, ``ema``, ...), state dicts under those keys
    :param optimizers: ``{key: optimizer}``; :param schedulers: ``{key: LR scheduler}``
    :param generators: ``{key: torch.Generator}`` (``data_rng``, ``noise_rng``)
    :param step: steps done; :param losses: loss per step
    """

    modules: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    schedulers: dict = field(default_factory=dict)
    generators: dict = field(default_factory=dict)
    step: int = 0
    losses: list = field(default_factory=list)

    def state_dict(self, config: dict) -> dict:
        out = {k: m.state_dict() for k, m in {**self.modules, **self.optimizers, **self.schedulers}.items()}
        out.update({k: g.get_state() for k, g in self.generators.items()})
        out.update(step=self.step, losses=self.losses, config=config)
        return out

    def load(self, ck: dict) -> None:
        for k, m in {**self.modules, **self.optimizers, **self.schedulers}.items():
            m.load_state_dict(ck[k])
        for k, g in self.generators.items():
            # generator states are CPU byte tensors even for a CUDA generator (map_location moved them)
            g.set_state(ck[k].cpu())
        self.step, self.losses = int(ck["step"]), list(ck["losses"])


def run_loop(cfg, out: Path, state: TrainState, step_fn: Callable[[int], float], *, resume: bool = True,
             progress: bool = True, stop_at: int | None = None, device="cpu",
             on_step: Callable[[int], None] | None = None) -> bool:
    """Run ``step_fn`` from ``state.step`` to ``cfg.steps`` (or ``stop_at``), checkpointing.

    :param cfg: a :class:`~linksim.codecs.configs.TrainRunConfig` (``steps``, ``checkpoint_every``, ``name``)
    :param out: the run folder (``config.yaml`` and ``checkpoint.pt`` are written there)
    :param step_fn: does one optimisation step numbered ``step`` (0-based) and returns its loss
    :param on_step: called with the new step count after each step (sample grids, ...)
    :return: ``True`` when ``cfg.steps`` were reached, ``False`` when stopped at ``stop_at``
    """
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.is_file():
        state.load(torch.load(ckpt, map_location=device, weights_only=False))
    last = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    bar = tqdm(total=cfg.steps, initial=state.step, disable=not progress, desc=cfg.name, dynamic_ncols=True)
    while state.step < last:
        loss = float(step_fn(state.step))
        if not math.isfinite(loss):
            raise FloatingPointError(f"{cfg.name}: loss is {loss} at step {state.step}")
        state.step += 1
        state.losses.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}")
        if on_step is not None:
            on_step(state.step)
        if state.step % cfg.checkpoint_every == 0 or state.step == last:
            save_checkpoint(ckpt, state.state_dict(cfg.model_dump(mode="json")))
    bar.close()
    return state.step >= cfg.steps
