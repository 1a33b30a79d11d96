"""Settings of ``kind: diffjscc`` and its static checks at an operating point; where its weights are.

Torch-free: the scenario validator reads :class:`DiffJSCCSettings` and runs its ``check_point``
without importing torch (``linksim validate``); the method is :mod:`linksim.codecs.diffjscc.method`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from linksim.weights import KNOWN, project_weights_dir

from ..jscc.settings import check_jscc_point

__all__ = ["DiffJSCCSettings", "EMBEDDED_DIR", "EMBEDDED_DDPM_DIR", "refiner_dir", "default_sd_path",
           "default_control_path", "missing_sd_files"]

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
#: the embedded refiner (a diffusers folder: ``config.json``, weights, ``scheduler_config.json``)
EMBEDDED_DDPM_DIR = EMBEDDED_DIR / "ddpm"


def refiner_dir(spec: str) -> Path:
    """The refiner folder of ``refiner: embedded | <folder>``."""
    return EMBEDDED_DDPM_DIR if spec == "embedded" else Path(spec).expanduser()


_SD_FILES = ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
             "vae/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json")


def default_sd_path() -> Path:
    """``$LINKSIM_WEIGHTS/stable-diffusion-2-1-base`` (the diffusers folder of SD 2.1-base)."""
    return project_weights_dir() / KNOWN["sd21_unet"].filename.split("/")[0]


def default_control_path() -> Path:
    """``$LINKSIM_WEIGHTS/diffjscc_control.safetensors`` (a control network in our layout)."""
    return project_weights_dir() / KNOWN["diffjscc_control"].filename


def missing_sd_files(sd_path: str | None, control: str | None, caption: str = "none") -> list[Path]:
    """Files the sd21 backbone needs that do not exist (empty list: all there)."""
    sd = Path(sd_path).expanduser() if sd_path else default_sd_path()
    missing = [sd / f for f in _SD_FILES if not (sd / f).is_file()]
    text_ok = importlib.util.find_spec("transformers") is not None and (sd / "text_encoder/config.json").is_file()
    if not text_ok and not (sd / "empty_prompt.safetensors").is_file():
        missing.append(sd / "empty_prompt.safetensors")  # or text_encoder/ + tokenizer/ with transformers
    if caption != "none" and not Path(caption).expanduser().is_dir():
        missing.append(Path(caption))
    ctrl = Path(control).expanduser() if control else default_control_path()
    if not ctrl.is_file():
        missing.append(ctrl)
    return missing


class DiffJSCCSettings(BaseModel):
    """Settings of ``kind: diffjscc`` (strict).

    :param jscc: stage-1 JSCC (see the module docstring); default ``embedded_resnet``
    :param backbone: ``embedded`` (pixel-space conditional DDPM, CPU-sized, shipped) or ``sd21``
        (Stable Diffusion 2.1-base + the DiffJSCC control network; weights supplied by the user)
    :param refiner: ``embedded`` backbone: ``embedded`` or a directory written by
        :func:`linksim.codecs.diffjscc.training.export_run`
    :param num_steps: reverse steps (= NFE); default 50 DDIM steps (embedded) / 100 spaced DDPM
        steps (sd21, the paper's)
    :param eta: DDIM stochasticity of the embedded backbone (0: deterministic given the initial noise)
    :param color_fix: wavelet colour fix against the stage-1 output (the paper's; ``false`` shows the raw sample)
    :param guidance_scale: sd21: step size of the latent-MSE guidance towards the stage-1 latent (0: off, the default)
    :param sd_path: sd21: the SD 2.1-base diffusers folder (``unet/``, ``vae/``, ``text_encoder/``,
        ``tokenizer/``, ``scheduler/``); default ``$LINKSIM_WEIGHTS/stable-diffusion-2-1-base``
    :param control: sd21: the DiffJSCC control-network checkpoint (published layout, or ours)
    :param caption: sd21: ``none`` (the empty prompt; run.json states it) or a captioner directory
        (a transformers BLIP-2 model; needs the ``text`` extra)
    :param use_no_eff: the refiner (and stage 1) get the effective SNR after equalisation
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    jscc: str = "embedded_resnet"
    backbone: Literal["embedded", "sd21"] = "embedded"
    refiner: str = "embedded"
    num_steps: int | None = Field(None, ge=1)
    eta: float = Field(0.0, ge=0, le=1)
    color_fix: bool = True
    guidance_scale: float = Field(0.0, ge=0)
    sd_path: str | None = None
    control: str | None = None
    caption: str = "none"
    use_no_eff: bool = True

    def check_point(self, point) -> None:
        """As ``jscc`` for the stage-1 model (the CBR must be one it serves), then the refiner's files."""
        check_jscc_point(self.jscc, point, "diffjscc")
        if self.backbone == "embedded":
            d = refiner_dir(self.refiner)
            for name in ("config.json", "diffusion_pytorch_model.safetensors", "scheduler_config.json"):
                if not (d / name).is_file():
                    raise ValueError(f"DiffJSCC refiner file missing: {d / name}")
        else:
            missing = missing_sd_files(self.sd_path, self.control, self.caption)
            if missing:
                raise ValueError("backbone sd21 unavailable: missing " + ", ".join(str(p) for p in missing)
                                 + " (see `linksim weights`; nothing is downloaded)")
