"""Loading a saved JSCC model of any architecture (the ``arch`` field of its ``.json`` config).

:func:`load_model` reads the config beside the weights and builds :class:`~linksim.codecs.jscc.adjscc.ADJSCC`
(``arch`` absent or ``adjscc``) or the DiffJSCC stage-1 :class:`~linksim.codecs.jscc.resnet.ResNetJSCC`
(``arch: resnet``); it lives above both model modules so that neither imports the other back.
:func:`load_jscc` resolves any JSCC a scenario names (embedded, native file, public checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .adjscc import ADJSCC, ADJSCCConfig, load_embedded, load_native
from .resnet import ResNetJSCC, ResNetJSCCConfig
from .geometry import check_model_cbr

__all__ = ["ARCHITECTURES", "load_model", "load_jscc"]

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


def load_jscc(model: str, cbr, device: str | torch.device = "cpu") -> ADJSCC:
    """The ADJSCC named by ``model`` (see :class:`~linksim.codecs.jscc.settings.JSCCSettings`) for CBR ``cbr``.

    :raises FileNotFoundError: the weights file does not exist (message names it)
    :raises ValueError: the model's CBR ``C/96`` differs from ``cbr``
    """
    if model == "embedded":
        net = load_embedded(cbr, device)
    elif model == "embedded_resnet":
        from .resnet import load_embedded_resnet

        net = load_embedded_resnet(cbr, device)
    else:
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"JSCC weights {path} do not exist")
        from .diffjscc_cnn import load_published_diffjscc, published_stage1_state

        if path.suffix == ".safetensors":
            net = load_model(path, device)
        elif (stage1 := published_stage1_state(path)) is not None:  # read once, not twice (GB files)
            net = load_published_diffjscc(path, device, state=stage1)
        else:
            from .external import load_external_adjscc

            net = load_external_adjscc(path, device)
    check_model_cbr(model, net.channels, net.downsampling, cbr)
    return net.eval()
