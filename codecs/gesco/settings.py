"""Settings of ``kind: gesco``, its static checks at an operating point, and the paper's noise table.

Torch-free: the scenario validator reads :class:`GescoSettings` and runs its ``check_point``
without importing torch (``linksim validate``); the method is :mod:`linksim.codecs.gesco.method`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, PositiveInt

from ..separation_settings import DigitalLinkSettings, link_plan

__all__ = ["GescoSettings", "EMBEDDED_DIR", "EMBEDDED_MODELS", "PAPER_SIGMA"]

#: the project's GESCO weights and scene segmenter
EMBEDDED_DIR = Path(__file__).parent / "embedded"
#: "PSNR" key of the GESCO code -> noise std σ on the maps
PAPER_SIGMA: dict[int, float] = {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}
#: ``model:`` names of the shipped weights
EMBEDDED_MODELS = {"embedded": EMBEDDED_DIR / "gesco_receiver.safetensors",
                   "embedded_noisy": EMBEDDED_DIR / "gesco_noisy.safetensors",
                   "embedded_clean": EMBEDDED_DIR / "gesco_clean.safetensors",
                   "embedded_fds": EMBEDDED_DIR / "gesco_fds.safetensors"}


class GescoSettings(DigitalLinkSettings):
    """Settings of ``kind: gesco`` (the digital-link keys apply to ``transmit: digital``).

    :param transmit: ``analog`` | ``digital`` | ``paper`` (module notes)
    :param model: ``embedded`` (the receiver: noisy training with FDS inside training, the wider
        UNet of ``configs/gesco_receiver.yaml``), or the ablation's same-size trio
        ``embedded_noisy`` (noisy training), ``embedded_clean`` (clean training), ``embedded_fds``
        (noisy training with FDS inside training), or a ``.safetensors`` file written by
        ``linksim train gesco`` (its ``.json`` beside it)
    :param fds: apply the FDS block to received maps (analog, paper); digital: to the exact
        decoded map only for a model trained on FDS-processed maps (``fds_training`` in its
        ``.json``, as ``embedded``), whose input must look like its training maps
    :param guidance: classifier-free guidance scale ``s`` (paper: 2 on Cityscapes)
    :param num_steps: DDIM steps (NFE = 2 per step: the doubled CFG batch)
    :param eta: DDIM stochasticity (0 deterministic, 1 DDPM-like)
    :param side_repeat: analog: real ±1 values per class of the present-class mask
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    transmit: Literal["analog", "digital", "paper"] = "analog"
    model: str = "embedded"
    fds: bool = True
    guidance: float = 2.0
    num_steps: PositiveInt = 25
    eta: float = Field(0.0, ge=0, le=1)
    side_repeat: PositiveInt = 4

    def check_point(self, point) -> None:
        """Weights exist; sizes divisible by the UNet's levels; analog/digital need CSNR + CBR (+ grid);
        paper needs a csnr_db that is one of the paper's "PSNR" keys."""
        if point.cbr is not None and point.image_shape is not None:
            _ = point.num_symbols
        path = EMBEDDED_MODELS.get(self.model, Path(self.model).expanduser())
        if not path.is_file():
            raise ValueError(f"GESCO weights {path} do not exist")
        if point.image_shape is None:
            raise ValueError("gesco needs a data: section with labels (data.source: scenes | cityscapes | coco_stuff)")
        h, w = point.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the SPADE UNet downsamples by 4: image size {h}x{w} must be a multiple of 4")
        if point.csnr_db is None:
            raise ValueError("gesco needs a csnr_db sweep axis")
        if self.transmit == "paper":
            if float(point.csnr_db) not in {float(k) for k in PAPER_SIGMA}:
                raise ValueError(f"transmit: paper reads csnr_db as the paper's PSNR key; "
                                 f"{point.csnr_db} is not one of {sorted(PAPER_SIGMA)}")
            return
        if point.cbr is None:
            raise ValueError(f"transmit: {self.transmit} needs a cbr sweep axis")
        if self.transmit == "digital":
            link_plan(self, point)
        point.grid_info()
