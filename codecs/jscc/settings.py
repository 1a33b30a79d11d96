"""Settings of ``kind: jscc`` and the static checks of every method built on a JSCC model.

Torch-free: the scenario validator reads :class:`JSCCSettings` and runs :func:`check_jscc_point`
without importing torch (``linksim validate``); the CBR arithmetic (``C = 6·d²·ρ`` for
down-sampling ``d``) and the weight paths are :mod:`.geometry`.
"""

from __future__ import annotations

import functools
import json
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .geometry import (ADJSCC_DOWNSAMPLING, RESNET_DOWNSAMPLING, check_model_cbr, embedded_path, embedded_resnet_path,
                       latent_channels)

__all__ = ["JSCCSettings", "check_jscc_point"]


class JSCCSettings(BaseModel):
    """Settings of ``kind: jscc`` (strict: unknown keys are errors).

    :param model: ``embedded`` (the project's ADJSCC for the point's CBR), ``embedded_resnet``
        (the project's x16 ResNet JSCC of DiffJSCC's stage 1, :mod:`.resnet`: CBR 1/384, 1/96), a native
        ``.safetensors`` file (with its ``.json`` config beside it), a public ADJSCC checkpoint
        (``.pt``/``.pth``/``.pth.tar``, keys mapped by :mod:`linksim.codecs.jscc.external`), or a
        published DiffJSCC checkpoint (full ``.ckpt`` or its stage 1; AWGN models, CBR ``C/1536``;
        :mod:`linksim.codecs.jscc.diffjscc_cnn`)
    :param use_no_eff: feed the decoder's AF modules the effective SNR after equalisation
        (``-10·log10(mean no_eff)`` per image) instead of the nominal CSNR; identical on AWGN
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "embedded"
    use_no_eff: bool = True

    def check_point(self, point) -> None:
        """CBR = C/96 with an existing model, image sides multiples of 4, and the grid fits."""
        check_jscc_point(self.model, point, "jscc")


@functools.lru_cache(maxsize=16)
def _file_cbr(path: str, cbr: Fraction) -> None:
    """A user's model file realises ``cbr``: from the ``.json`` config of a native ``.safetensors``
    (no torch), else by loading the checkpoint (public formats are torch pickles; cached per CBR)."""
    cfg = Path(path).with_suffix(".json")
    if Path(path).suffix == ".safetensors" and cfg.is_file():
        meta = json.loads(cfg.read_text())
        ds = RESNET_DOWNSAMPLING if meta.get("arch") == "resnet" else ADJSCC_DOWNSAMPLING
        check_model_cbr(path, int(meta["channels"]), ds, cbr)
        return
    from .checkpoint import load_jscc

    load_jscc(path, cbr)


def check_jscc_point(model: str, point, kind: str) -> None:
    """Static checks of any method built on a JSCC ``model`` at ``point`` (before any work).

    CSNR, CBR and image shape are given; CBR = C/96 (ADJSCC) or C/1536 (ResNet) with existing
    weights (embedded for that CBR, or the named file); image sides are multiples of the
    down-sampling; ``N`` fits the channel's grid.

    :raises ValueError: one line naming what is wrong
    """
    if point.csnr_db is None or point.cbr is None or point.image_shape is None:
        raise ValueError(f"{kind} needs csnr_db and cbr sweep axes and a data: section")
    _ = point.num_symbols
    h, w = point.image_shape
    if model == "embedded_resnet":
        if h % 16 or w % 16:
            raise ValueError(f"the ResNet JSCC downsamples by 16: image size {h}x{w} must be a multiple of 16")
        c = latent_channels(point.cbr, RESNET_DOWNSAMPLING, "ResNetJSCC")
        if not embedded_resnet_path(point.cbr).is_file():
            raise ValueError(f"no embedded ResNet JSCC for CBR {point.cbr} (C={c}): {embedded_resnet_path(point.cbr)} "
                             f"does not exist; embedded CBRs are 1/384 and 1/96")
        point.grid_info()
        return
    if h % 4 or w % 4:
        raise ValueError(f"ADJSCC downsamples by 4: image size {h}x{w} must be a multiple of 4")
    c = latent_channels(point.cbr, ADJSCC_DOWNSAMPLING, "ADJSCC")
    if model == "embedded" and not embedded_path(point.cbr).is_file():
        raise ValueError(f"no embedded ADJSCC for CBR {point.cbr} (C={c}); embedded CBRs are 1/48 and 1/24")
    if model != "embedded" and not Path(model).expanduser().is_file():
        raise ValueError(f"JSCC weights {model} do not exist")
    if model != "embedded":  # a user's model: its latent size C must give this CBR
        _file_cbr(str(Path(model).expanduser().resolve()), Fraction(point.cbr))
    point.grid_info()
