"""Load a :class:`~linksim.codecs.diffusion.prior.Prior` from published checkpoint formats.

Two formats:

* **diffusers**: a directory holding a ``UNet2DModel`` (in ``unet/`` or at the root) and a
  scheduler config (``scheduler/scheduler_config.json`` or ``scheduler_config.json`` at the root).
  Only eps-prediction is accepted; ``variance_type="learned_range"`` gives a learned-sigma prior.
* **ADM** (OpenAI guided-diffusion / DPS): a ``.pt`` state dict + a named architecture from
  :data:`PRIOR_CONFIGS` (or explicit :class:`~linksim.codecs.diffusion.adm_unet.ADMUNet` kwargs);
  schedule: linear betas 1e-4 -> 0.02, T = 1000, learned sigma.

Nothing is downloaded here: a missing file raises :class:`FileNotFoundError` naming the file and
where the public checkpoint can be fetched (the engine's weights resolver does downloads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from linksim.weights import project_weights_dir, verify_shipped

from .adm_unet import ADMUNet
from .prior import Prior
from .settings import EMBEDDED_PRIOR_DIR, PRIOR_SOURCES  # noqa: F401 (torch-free; re-exported)

from .schedules import cosine_betas, linear_betas

__all__ = ["PRIOR_CONFIGS", "PRIOR_SOURCES", "load_prior", "load_adm_prior", "load_diffusers_prior"]

_ADM_COMMON: dict[str, Any] = dict(
    image_size=256,
    in_channels=3,
    learn_sigma=True,
    num_heads=4,
    num_head_channels=64,
    num_heads_upsample=-1,
    use_scale_shift_norm=True,
    resblock_updown=True,
    dropout=0.0,
)

#: ADMUNet kwargs of the published pixel-space 256x256 unconditional checkpoints.
PRIOR_CONFIGS: dict[str, dict[str, Any]] = {
    # DPS (Chung et al. 2023) FFHQ model, used by DiffCom.
    "ffhq_10m": dict(_ADM_COMMON, model_channels=128, num_res_blocks=1, attention_resolutions="16"),
    # OpenAI guided-diffusion ImageNet 256x256 unconditional model.
    "imagenet256_uncond": dict(
        _ADM_COMMON, model_channels=256, num_res_blocks=2, attention_resolutions="8,16,32"
    ),
}

# File stems that identify a published config when no config is given.
_STEM_TO_CONFIG = {
    "ffhq_10m": "ffhq_10m",
    "256x256_diffusion_uncond": "imagenet256_uncond",
    "imagenet256_uncond": "imagenet256_uncond",
}


def _missing(path: Path, what: str, config: str | None = None) -> FileNotFoundError:
    hint = ""
    if config in PRIOR_SOURCES:
        src = PRIOR_SOURCES[config]
        hint = (
            f"; download {src['filename']} from {src['url']} and put it there "
            "(or in $LINKSIM_WEIGHTS)"
        )
    return FileNotFoundError(f"{what} not found: {path}{hint}")


def _adm_state_dict(obj: Any) -> dict[str, Tensor]:
    """Unwrap the common checkpoint containers around an ADM state dict."""
    if isinstance(obj, Mapping):
        for key in ("ema", "state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        sd = dict(obj)
        # DataParallel / DDP wrapping adds "module." to every key.
        if sd and all(k.startswith("module.") for k in sd):
            sd = {k[len("module."):]: v for k, v in sd.items()}
        return sd
    raise TypeError(f"expected a state dict in the checkpoint, got {type(obj).__name__}")


def load_adm_prior(
    path: str | Path,
    config: str | Mapping[str, Any] | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> Prior:
    """ADM ``.pt`` checkpoint -> :class:`Prior` (linear betas 1e-4 -> 0.02, T = 1000).

    :param path: the state-dict file.
    :param config: a :data:`PRIOR_CONFIGS` name, explicit :class:`ADMUNet` kwargs, or ``None``
        to infer the name from the file stem (``ffhq_10m``, ``256x256_diffusion_uncond``).
    :param map_location: where the tensors are loaded.
    :returns: a :class:`Prior` in eval mode with ``learned_sigma`` from the config.
    :raises FileNotFoundError: the file is absent (message says what to download).
    :raises ValueError: unknown config name; :raises RuntimeError: keys/shapes do not match.
    """
    path = Path(path)
    name = None
    if config is None:
        name = _STEM_TO_CONFIG.get(path.stem)
        if name is None:
            raise ValueError(
                f"cannot infer the ADM config of {path.name}; pass config= one of "
                f"{sorted(PRIOR_CONFIGS)} or ADMUNet kwargs"
            )
    elif isinstance(config, str):
        name = config
    if name is not None:
        if name not in PRIOR_CONFIGS:
            raise ValueError(f"unknown ADM config {name!r}; known: {sorted(PRIOR_CONFIGS)}")
        kwargs = dict(PRIOR_CONFIGS[name])
    else:
        kwargs = dict(config)  # type: ignore[arg-type]
    if not path.is_file():
        raise _missing(path, "ADM checkpoint", name)
    sd = _adm_state_dict(torch.load(path, map_location=map_location, weights_only=True))
    net = ADMUNet(**kwargs)
    net.load_state_dict(sd, strict=True)
    net.eval().requires_grad_(False)
    return Prior(net, linear_betas(1000), learned_sigma=net.learn_sigma)


class DiffusersUNet(nn.Module):
    """Adapter: ``UNet2DModel`` called as ``net(x, t) -> Tensor`` (its ``.sample``)."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.unet(x, t).sample


def _betas_from_scheduler_config(cfg: Mapping[str, Any]) -> Tensor:
    """float64 betas from a diffusers scheduler config (diffusers itself computes float32)."""
    T = int(cfg.get("num_train_timesteps", 1000))
    if cfg.get("trained_betas") is not None:
        return torch.tensor(cfg["trained_betas"], dtype=torch.float64)
    kind = cfg.get("beta_schedule", "linear")
    start, end = float(cfg.get("beta_start", 1e-4)), float(cfg.get("beta_end", 0.02))
    if kind == "linear":
        # diffusers' "linear" takes the endpoints as given (no ADM 1000/T rescaling).
        return linear_betas(T, start, end, rescale=False)
    if kind == "scaled_linear":
        return torch.linspace(start**0.5, end**0.5, T, dtype=torch.float64) ** 2
    if kind == "squaredcos_cap_v2":
        return cosine_betas(T)
    raise ValueError(f"unsupported beta_schedule {kind!r} in the scheduler config")


def _find(root: Path, candidates: list[str], what: str) -> Path:
    for rel in candidates:
        if (root / rel).exists():
            return root / rel
    raise FileNotFoundError(
        f"{what} not found under {root}: looked for {', '.join(candidates)} "
        "(save the model with UNet2DModel.save_pretrained and the scheduler with "
        "DDPMScheduler.save_pretrained)"
    )


def load_diffusers_prior(path: str | Path, *, torch_dtype: torch.dtype | None = None) -> Prior:
    """diffusers directory (``UNet2DModel`` + scheduler config) -> :class:`Prior`.

    :param path: the pipeline or model directory.
    :param torch_dtype: dtype of the UNet weights (default: as saved).
    :raises FileNotFoundError: no UNet config or no scheduler config in the directory.
    :raises ValueError: a prediction type other than ``epsilon`` or an unsupported variance type.
    """
    from diffusers import UNet2DModel  # heavy import, only when a diffusers prior is loaded

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"diffusers model directory not found: {root}")
    unet_cfg = _find(root, ["unet/config.json", "config.json"], "UNet2DModel config")
    sched_cfg = _find(
        root, ["scheduler/scheduler_config.json", "scheduler_config.json"], "scheduler config"
    )
    cfg = json.loads(sched_cfg.read_text())
    if cfg.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError(
            f"only epsilon-prediction priors are supported, {sched_cfg} has "
            f"prediction_type={cfg['prediction_type']!r}"
        )
    variance = cfg.get("variance_type", "fixed_small")
    if variance == "learned_range":
        learned, fixed = True, "large"
    elif variance in ("fixed_small", "fixed_small_log"):
        learned, fixed = False, "small"
    elif variance in ("fixed_large", "fixed_large_log"):
        learned, fixed = False, "large"
    else:
        raise ValueError(f"unsupported variance_type {variance!r} in {sched_cfg}")
    # low_cpu_mem_usage=False: the default path wants `accelerate` and prints an install hint per load
    verify_shipped(unet_cfg.parent / "diffusion_pytorch_model.safetensors")
    unet = UNet2DModel.from_pretrained(unet_cfg.parent, torch_dtype=torch_dtype, low_cpu_mem_usage=False)
    expected_out = 2 * unet.config.in_channels if learned else unet.config.in_channels
    if unet.config.out_channels != expected_out:
        raise ValueError(
            f"UNet has {unet.config.out_channels} output channels, variance_type {variance!r} "
            f"needs {expected_out}"
        )
    unet.eval().requires_grad_(False)
    return Prior(DiffusersUNet(unet), _betas_from_scheduler_config(cfg), learned, fixed_variance=fixed)


def load_prior(
    spec: str | Path | Mapping[str, Any],
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> Prior:
    """Load a prior from a diffusers directory or an ADM checkpoint.

    :param spec: a published name (``ffhq_10m``, ``imagenet256_uncond``: the file
        :data:`PRIOR_SOURCES` names, looked up in ``$LINKSIM_WEIGHTS`` or ``./weights``), a
        directory (diffusers), a ``.pt``/``.pth`` file (ADM; config inferred from the file name
        unless ``config=`` is given), or a mapping ``{"path": ..., "config": ...}`` (``config``: a
        :data:`PRIOR_CONFIGS` name or ADMUNet kwargs).
    :param device: where to put the prior (default: CPU).
    :param kwargs: passed to :func:`load_adm_prior` or :func:`load_diffusers_prior`.
    :raises FileNotFoundError: the file does not exist (with what to download for known names).
    """
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "path" not in spec:
            raise ValueError("a prior spec mapping needs a 'path' key")
        path = Path(spec.pop("path"))
        kwargs = {**spec, **kwargs}
    elif isinstance(spec, str) and spec in PRIOR_SOURCES:
        path = project_weights_dir() / PRIOR_SOURCES[spec]["filename"]
        kwargs.setdefault("config", spec)
    else:
        path = Path(spec)
    if path.is_dir():
        prior = load_diffusers_prior(path, **kwargs)
    elif path.suffix in (".pt", ".pth", ".ckpt") or "config" in kwargs:
        prior = load_adm_prior(path, **kwargs)
    else:
        raise _missing(path, "prior (diffusers directory or ADM .pt file)", _STEM_TO_CONFIG.get(path.stem))
    return prior.to(device) if device is not None else prior
