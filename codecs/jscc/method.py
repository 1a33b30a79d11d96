"""Neural JSCC as an image method: ADJSCC encoder -> analog PHY chain -> ADJSCC decoder.

::

    images [B,3,H,W] --ADJSCC.encode(csnr)--> x [B,N] complex, unit power per image
      --AnalogChain (power norm., interleaver, AWGN / Rayleigh / OFDM + estimation + equalisation)-->
    y_eq [B,N], ChannelState(no, no_eff [B,N], ...)
      --ADJSCC.decode(csnr, no_eff)--> images [B,3,H,W] in [0,1]

The number of symbols follows from the model (``N = C·H·W/32``), so the scenario's CBR must be
``C/96`` for the model's ``C`` (``1/48`` for the embedded C=2 model, ``1/24`` for C=4).
"""

from __future__ import annotations

import functools

from fractions import Fraction
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from ..base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from .adjscc import ADJSCC, embedded_path, load_embedded
from .checkpoint import load_model

__all__ = ["JSCCSettings", "JSCCMethod", "load_jscc", "check_jscc_point"]


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


def load_jscc(model: str, cbr, device: str | torch.device = "cpu") -> ADJSCC:
    """The ADJSCC named by ``model`` (see :class:`JSCCSettings`) for CBR ``cbr``.

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
    want = Fraction(cbr) if not isinstance(cbr, str) else Fraction(cbr)
    have = Fraction(net.channels, 6 * net.downsampling**2)
    if have != want:
        raise ValueError(f"model {model!r} has C={net.channels} (CBR {have}); the sweep point asks for CBR {want}")
    return net.eval()


@functools.lru_cache(maxsize=16)
def _model_cbr(path: str, cbr: Fraction) -> None:
    """Load ``path`` once (per CBR) and raise ``ValueError`` when its CBR ``C/96`` is not ``cbr``."""
    load_jscc(path, cbr)


def check_jscc_point(model: str, point: OperatingPoint, kind: str) -> None:
    """Static checks of any method built on an ADJSCC ``model`` at ``point`` (before any work).

    CSNR, CBR and image shape are given; CBR = C/96 with existing weights (embedded for that CBR, or
    the named file); image sides are multiples of 4; ``N`` fits the OFDM grid.

    :raises ValueError: one line naming what is wrong
    """
    if point.csnr_db is None or point.cbr is None or point.image_shape is None:
        raise ValueError(f"{kind} needs csnr_db and cbr sweep axes and a data: section")
    _ = point.num_symbols
    h, w = point.image_shape
    if model == "embedded_resnet":
        from .resnet import ResNetJSCC, embedded_resnet_path

        if h % 16 or w % 16:
            raise ValueError(f"the ResNet JSCC downsamples by 16: image size {h}x{w} must be a multiple of 16")
        c = ResNetJSCC.channels_for_cbr(point.cbr)
        if not embedded_resnet_path(point.cbr).is_file():
            raise ValueError(f"no embedded ResNet JSCC for CBR {point.cbr} (C={c}): {embedded_resnet_path(point.cbr)} "
                             f"does not exist; embedded CBRs are 1/384 and 1/96")
        from linksim.phy.chains import grid_info

        grid_info(point.link, point.num_symbols)
        return
    if h % 4 or w % 4:
        raise ValueError(f"ADJSCC downsamples by 4: image size {h}x{w} must be a multiple of 4")
    c = ADJSCC.channels_for_cbr(point.cbr)
    if model == "embedded" and not embedded_path(point.cbr).is_file():
        raise ValueError(f"no embedded ADJSCC for CBR {point.cbr} (C={c}); embedded CBRs are 1/48 and 1/24")
    if model != "embedded" and not Path(model).expanduser().is_file():
        raise ValueError(f"JSCC weights {model} do not exist")
    if model != "embedded":  # a user's model: its latent size C must give this CBR (C/96)
        _model_cbr(str(Path(model).expanduser().resolve()), Fraction(point.cbr))
    from linksim.phy.chains import grid_info

    grid_info(point.link, point.num_symbols)


class JSCCMethod(ImageMethod):
    """``kind: jscc``: DeepJSCC (ADJSCC) over the scenario's analog chain.

    :param config: :class:`JSCCSettings` (or the engine's config model extending it)
    :param point: :class:`~linksim.codecs.base.OperatingPoint` (``csnr_db``, ``cbr``,
        ``image_shape``, ``link``)
    """

    def __init__(self, config, point: OperatingPoint):
        super().__init__(config, point)
        from linksim.phy.chains import AnalogChain

        self.model = load_jscc(config.model, point.cbr, point.device)
        h, w = point.image_shape
        self.num_symbols = self.model.num_symbols(h, w)
        self.chain = AnalogChain(point.link, self.num_symbols, device=point.device)

    @classmethod
    def check(cls, config, point: OperatingPoint) -> None:
        """CBR = C/96 with an existing model, image sides multiples of 4, and the OFDM grid fits."""
        super().check(config, point)
        check_jscc_point(config.model, point, "jscc")

    def grid(self):
        from linksim.phy.chains import grid_info

        return grid_info(self.point.link, self.num_symbols)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TxSignal:
        x, scale = self.model.encode(images.to(self.point.device), self.point.csnr_db, return_scale=True)
        return TxSignal(x=x, meta={"tx_scale": scale})

    @torch.no_grad()
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        # The transmit normaliser is side information only public-layout models use (they decode
        # rescaled symbols); native models ignore it.
        return RxSignal(y=y, state=state, tx_meta={"tx_scale": tx.meta["tx_scale"]})

    @torch.no_grad()
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        no_eff = rx.state.no_eff if self.config.use_no_eff else None
        x_hat = self.model.decode(rx.y, self.point.csnr_db, no_eff=no_eff, image_size=self.point.image_shape,
                                  tx_scale=rx.tx_meta["tx_scale"])
        return Decoded(images=x_hat.clamp(0, 1))
