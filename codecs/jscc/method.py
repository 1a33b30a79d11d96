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

import torch

from ..base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from .checkpoint import load_jscc
# settings and static checks are torch-free (the validator's); re-exported for the method's users
from .settings import JSCCSettings, check_jscc_point  # noqa: F401

__all__ = ["JSCCSettings", "JSCCMethod", "load_jscc", "check_jscc_point"]


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
