"""Loading a saved JSCC model of any architecture (the ``arch`` field of its ``.json`` config).

:func:`load_model` reads the config beside the weights and builds :class:`~linksim.codecs.jscc.adjscc.ADJSCC`
(``arch`` absent or ``adjscc``) or the DiffJSCC stage-1 :class:`~linksim.codecs.jscc.resnet.ResNetJSCC`
(``arch: resnet``); it lives above both model modules so that neither imports the other back.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .adjscc import ADJSCC, ADJSCCConfig, load_native
from .resnet import ResNetJSCC, ResNetJSCCConfig

__all__ = ["ARCHITECTURES", "load_model"]

#: ``arch`` of a saved config -> (model class, config class)
ARCHITECTURES = {"adjscc": (ADJSCC, ADJSCCConfig), "resnet": (ResNetJSCC, ResNetJSCCConfig)}


def load_model(weights_path: str | Path, device: str | torch.device = "cpu") -> ADJSCC:
    """Load a model saved by :func:`~linksim.codecs.jscc.adjscc.save_model` (weights + ``.json``
    config), eval mode, float32; the class follows the config's ``arch`` (default ``adjscc``).

    :raises FileNotFoundError: the weights or the config file is missing
    """
    cfg_path = Path(weights_path).with_suffix(".json")
    if not cfg_path.is_file():
        raise FileNotFoundError(f"ADJSCC weights file missing: {cfg_path}")
    arch = json.loads(cfg_path.read_text()).get("arch") or "adjscc"
    if arch not in ARCHITECTURES:
        raise ValueError(f"{cfg_path}: unknown JSCC arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    model_cls, config_cls = ARCHITECTURES[arch]
    return load_native(weights_path, model_cls, config_cls, device)
