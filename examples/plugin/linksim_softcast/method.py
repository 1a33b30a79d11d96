"""``kind: softcast``: the 2N lowest-frequency 2-D DCT coefficients of an image as N complex symbols.

A linear analog joint source-channel code in the spirit of SoftCast (Jakubczak & Katabi, 2011),
reduced to what an example needs: transmitter = orthonormal DCT per colour plane, keep the ``2N``
coefficients of lowest frequency (``u + v`` order), pair them into complex symbols; the analog chain
of ``linksim.phy`` normalises the power, sends them over the scenario's channel and equalises;
receiver = undo the power scale (side information), optionally shrink each coefficient by its LMMSE
gain, zero the dropped coefficients, inverse DCT.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from linksim.codecs.base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from linksim.scenario import MethodConfig


class SoftCastConfig(MethodConfig):
    """``kind: softcast``.

    :param decoder: ``lmmse`` (shrink each coefficient by ``λ / (λ + N0_eff)``, ``λ`` its energy
        measured at the transmitter and sent as side information) or ``zf`` (no shrinkage)
    """

    kind: Literal["softcast"] = "softcast"
    decoder: Literal["lmmse", "zf"] = "lmmse"

    def check_point(self, point) -> None:
        """Static check before any work (``linksim validate``): a CSNR axis and at most 3HW coefficients."""
        if point.csnr_db is None:
            raise ValueError("softcast needs a csnr_db sweep axis")
        if 2 * point.num_symbols > 3 * point.image_shape[0] * point.image_shape[1]:
            raise ValueError("softcast sends at most 3HW real coefficients: CBR must be <= 1/2")


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``[n, n]``: ``X = D x``, ``x = Dᵀ X``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


class SoftCastMethod(ImageMethod):
    """See the module docstring. :input images: ``[B, 3, H, W]`` in [0, 1]."""

    def __init__(self, config, point: OperatingPoint):
        super().__init__(config, point)
        from linksim.phy.chains import AnalogChain

        h, w = point.image_shape
        self.num_symbols = point.num_symbols
        self.dh, self.dw = dct_matrix(h), dct_matrix(w)
        u, v = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        order = torch.argsort((u + v).flatten() * (h * w) + u.flatten(), stable=True)  # low frequencies first
        keep = 2 * self.num_symbols
        # coefficient j of the kept list: plane j % 3, frequency order[j // 3]
        self.plane = torch.arange(keep) % 3
        self.freq = order[torch.arange(keep) // 3]
        self.chain = AnalogChain(point.link, self.num_symbols, device=point.device)

    def grid(self):
        from linksim.phy.chains import grid_info

        return grid_info(self.point.link, self.num_symbols)

    def _coefficients(self, images):
        c = self.dh @ (images - 0.5) @ self.dw.T  # [B, 3, H, W]
        return c.flatten(2)[:, self.plane, self.freq]  # [B, 2N]

    @torch.no_grad()
    def encode(self, images, generator=None) -> TxSignal:
        v = self._coefficients(images.cpu().float())
        energy = (v**2).mean(dim=0, keepdim=True).expand_as(v).clone()  # λ per coefficient (side info)
        x = torch.complex(v[:, 0::2], v[:, 1::2])
        scale = x.abs().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        return TxSignal(x=(x / scale).to(self.point.device), meta={"scale": scale, "energy": energy})

    @torch.no_grad()
    def channel(self, tx, channel_generator, noise_generator) -> RxSignal:
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        return RxSignal(y=y, state=state, tx_meta=tx.meta)

    @torch.no_grad()
    def decode(self, rx, generator=None) -> Decoded:
        scale = rx.tx_meta["scale"]
        y = rx.y.cpu() * scale
        v = torch.stack([y.real, y.imag], dim=-1).flatten(1)  # [B, 2N] in the kept order
        if self.config.decoder == "lmmse":
            # per real coefficient the noise is N0_eff / 2, scaled like the symbols
            no = (rx.state.no_eff.cpu().float() * scale**2 / 2).repeat_interleave(2, dim=1)
            lam = rx.tx_meta["energy"]
            v = v * lam / (lam + no)
        b = v.shape[0]
        h, w = self.point.image_shape
        c = torch.zeros(b, 3, h * w)
        c[:, self.plane, self.freq] = v
        x = self.dh.T @ c.reshape(b, 3, h, w) @ self.dw + 0.5
        return Decoded(images=x.clamp(0, 1))
