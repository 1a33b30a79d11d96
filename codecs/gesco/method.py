"""GESCO as an image method (``kind: gesco``): send the semantic maps, synthesise the scene.

::

    labels [B,H,W], instances -> one-hot maps of the present classes + instance-edge map
      transmit: analog  -> [±1 present-class mask, repeated] + maps average-pooled by f -> complex
                           symbols -> AnalogChain (any link) -> y_eq / power_scale -> mask, maps
                           -> nearest upsampling -> FDS -> absent classes re-inserted as zeros
      transmit: digital -> (label·2 + edge) index map -> zlib -> [W][H][len][payload] -> CRC +
                           5G LDPC + QAM (the separation machinery) -> exact maps (or nothing)
      transmit: paper   -> the paper's σ·N(0,1) straight onto the maps (σ from the "PSNR" table
                           keyed by the sweep's csnr_db) -> FDS -> absent classes zero
    condition [B, K+1, H, W] -> classifier-free-guided DDIM of the SPADE UNet -> images [B,3,H,W]

**Accounting.** Every mode reports ``payload_bits`` and the extras ``map_symbols`` (symbols that
carry the maps and the side information), ``side_bits`` and ``pool`` (analog) / ``downsample``
(digital). ``channel_uses`` (the engine's column) is the budget ``N = ρ·3HW`` the grid occupies.

* *analog*: the side information — the ``K``-bit present-class mask — travels in the same
  symbols, as ``side_repeat`` real ±1 values per class (majority by the sign of their mean), so it
  is counted (``ceil(K·side_repeat / 2)`` symbols) and can fail. The pooling factor ``f`` is the
  smallest that fits ``side + ceil((P+1)·⌈H/f⌉·⌈W/f⌉ / 2) <= N`` for the ``P`` present classes; the
  receiver recomputes ``f`` from the decoded mask. The unused rest of the ``N`` symbols is silent
  (zero); the chain normalises each image to unit average power over all ``N``, so every method
  spends the same energy per image. ``payload_bits`` is empty (analog).
* *digital*: the map is coded losslessly (zlib of the ``label·2 + edge`` bytes); when it does not
  fit the LDPC capacity it is point-sampled by ``d = 2, 3, …`` until it does (the stride travels in
  the header's W/H fields, the receiver upsamples nearest). The present-class list is implied by
  the map (``side_bits`` 0). **Undecodable block policy**: a failed CRC still tries the payload
  (zlib's own checksum rejects corrupt streams); a map that does not decode is replaced by the
  all-zero condition, i.e. the receiver shows an unconditional sample of the model (``outage``
  true).
* *paper*: no channel uses — ``cbr_defined`` is false and ``map_symbols`` empty.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from linksim.weights import verify_shipped

from ..base import Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from ..separation import SeparationMethod, pack_stream, parse_stream
from .model import SemanticUNet, SemanticUNetConfig, clean_up, fds
from .sampler import GescoSampler
from .semantic import condition, paper_channel, present_classes
# settings and static checks are torch-free (the validator's); re-exported for the method's users
from .settings import EMBEDDED_MODELS, PAPER_SIGMA, GescoSettings  # noqa: F401

__all__ = ["GescoSettings", "GescoMethod", "load_gesco", "EMBEDDED_MODELS", "analog_layout", "pool_factor"]

_CRC = "CRC24A"
_CACHE: dict[str, SemanticUNet] = {}


def load_gesco(model: str = "embedded", device: str | torch.device = "cpu") -> SemanticUNet:
    """The :class:`SemanticUNet` named by ``model`` (float32, eval; cached per process).

    :raises FileNotFoundError: the weights (or their ``.json``) do not exist
    """
    path = EMBEDDED_MODELS.get(model, Path(model).expanduser())
    key = f"{path}:{device}"
    if key not in _CACHE:
        from safetensors.torch import load_file

        meta = path.with_suffix(".json")
        if not path.is_file() or not meta.is_file():
            raise FileNotFoundError(f"GESCO weights not found: {path} (+ {meta.name})")
        info = json.loads(meta.read_text())
        net = SemanticUNet(SemanticUNetConfig(**info["model"]))
        net.load_state_dict({k: v.float() for k, v in load_file(str(verify_shipped(path))).items()})
        net.scheduler_config = info.get("scheduler")  # the diffusers scheduler it was trained with
        # trained on FDS-processed maps: its input must be FDS-processed in every mode (digital too)
        net.fds_trained = bool(info.get("train_config", {}).get("fds_training", False))
        _CACHE[key] = net.to(device).eval().requires_grad_(False)
    return _CACHE[key]


def side_symbols(num_classes: int, repeat: int) -> int:
    """Complex symbols of the analog present-class mask: ``ceil(K·repeat / 2)``."""
    return math.ceil(num_classes * repeat / 2)


def analog_layout(num_present: int, height: int, width: int, f: int, num_classes: int, repeat: int) -> int:
    """Symbols of one analog image: side information + ``ceil((P+1)·⌈H/f⌉·⌈W/f⌉ / 2)``."""
    maps = (num_present + 1) * math.ceil(height / f) * math.ceil(width / f)
    return math.ceil((num_classes * repeat + maps) / 2)


def pool_factor(num_present: int, height: int, width: int, budget: int, num_classes: int, repeat: int) -> int | None:
    """Smallest pooling factor ``f`` whose layout fits ``budget`` symbols (``None``: none does)."""
    for f in range(1, max(height, width) + 1):
        if analog_layout(num_present, height, width, f, num_classes, repeat) <= budget:
            return f
    return None


class GescoMethod(ImageMethod):
    """``kind: gesco`` (module notes).

    :param config: :class:`GescoSettings` (or the engine's config extending it)
    :param point: :class:`~linksim.codecs.base.OperatingPoint`

    Needs labelled data: :meth:`encode` takes ``side={"labels": [B,H,W], "instances": [B,H,W]}``.
    """

    uses_side = True
    extra_columns = ("transmit", "map_symbols", "side_bits", "pool", "downsample", "side_ok", "crc_ok",
                     "cbr_defined")

    def __init__(self, config, point: OperatingPoint):
        super().__init__(config, point)
        self.net = load_gesco(config.model, point.device)
        self.num_classes = self.net.config.label_nc - 1
        self.sampler = GescoSampler(self.net, guidance=config.guidance, num_steps=config.num_steps, eta=config.eta,
                                    scheduler=getattr(self.net, "scheduler_config", None))
        self.budget = point.num_symbols if point.cbr is not None else None
        if config.transmit == "analog":
            from linksim.phy.chains import AnalogChain

            self.chain = AnalogChain(point.link, self.budget, device=point.device)
        elif config.transmit == "digital":
            from linksim.phy.chains import DigitalChain

            self.mcs, self.layout = SeparationMethod.plan(config, point)
            self.chain = DigitalChain(point.link, self.layout.bits_per_symbol, self.layout.k, self.layout.n,
                                      num_codewords=self.layout.num_codewords, crc=_CRC, device=point.device,
                                      num_iter=config.ldpc_iterations, num_symbols=self.budget)
            self.capacity_bits = self.chain.num_info_bits

    def grid(self):
        from linksim.phy.chains import grid_info

        return grid_info(self.point.link, self.budget or 1)

    # -- transmitter
    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None, side: dict | None = None) -> TxSignal:
        if not side or side.get("labels") is None:
            raise ValueError("gesco sends label maps: the data needs labels (data.source: scenes | cityscapes | coco_stuff)")
        labels = side["labels"].to(self.point.device)
        instances = side.get("instances")
        instances = instances.to(self.point.device) if instances is not None else None
        cond = condition(labels, instances, self.num_classes)
        present = present_classes(labels, self.num_classes)
        meta = {"eval_present": present}
        mode = self.config.transmit
        if mode == "paper":
            return TxSignal(x=cond, meta=dict(meta, present=present))
        if mode == "analog":
            return self._encode_analog(cond, present, meta)
        return self._encode_digital(labels, cond, generator, meta)

    def _encode_analog(self, cond, present, meta) -> TxSignal:
        b, _, h, w = cond.shape
        k, r = self.num_classes, self.config.side_repeat
        x = torch.zeros(b, self.budget, dtype=torch.complex64, device=cond.device)
        pools, used = [], []
        for i in range(b):
            p = int(present[i].sum())
            f = pool_factor(p, h, w, self.budget, k, r)
            if f is None:
                raise ValueError(f"CBR {self.point.cbr}: {self.budget} symbols cannot carry even 1x1 maps of "
                                 f"{p + 1} classes + side information")
            sent = torch.cat([cond[i, :k][present[i]], cond[i, k:]])  # [P+1, H, W]
            pooled = F.adaptive_avg_pool2d(sent[None], (math.ceil(h / f), math.ceil(w / f)))[0]
            mask = (present[i].float() * 2 - 1).repeat(r)  # class-major repeats: [r*K]
            reals = torch.cat([mask, pooled.flatten()])
            reals = F.pad(reals, (0, reals.numel() % 2))
            n = reals.numel() // 2
            x[i, :n] = torch.complex(reals[0::2], reals[1::2])
            pools.append(f)
            used.append(n)
        meta.update(pool=torch.tensor(pools), map_symbols=torch.tensor(used))
        return TxSignal(x=x, meta=meta)

    def _encode_digital(self, labels, cond, generator, meta) -> TxSignal:
        b, h, w = labels.shape
        k = self.num_classes
        idx = (labels.clamp(max=k).cpu() * 2 + cond[:, k].cpu().long()).numpy().astype(np.uint8)
        streams, bits, factors, outage = [], [], [], []
        for i in range(b):
            for d in range(1, max(h, w) + 1):
                small = np.ascontiguousarray(idx[i, ::d, ::d])
                payload = zlib.compress(small.tobytes(), 9)
                try:
                    s = pack_stream(payload, small.shape[0], small.shape[1], self.capacity_bits, generator)
                    break
                except ValueError:
                    continue
            else:
                payload, d = None, 0
                s = pack_stream(None, h, w, self.capacity_bits, generator)
            streams.append(s)
            bits.append(8 * len(payload) if payload else 0)
            factors.append(d)
            outage.append(payload is None)
        coded = self.layout.num_codewords * self.layout.n // self.layout.bits_per_symbol
        meta.update(downsample=torch.tensor(factors), map_symbols=coded)
        return TxSignal(x=torch.stack(streams).to(self.chain.device), payload_bits=torch.tensor(bits),
                        outage=torch.tensor(outage), meta=meta)

    # -- channel
    @torch.no_grad()
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        mode = self.config.transmit
        if mode == "paper":
            sigma = PAPER_SIGMA[int(round(self.point.csnr_db))]
            y = paper_channel(tx.x, tx.meta["present"], sigma, noise_generator)
            return RxSignal(y=y, state=None, tx_meta=dict(tx.meta, payload_bits=None))
        real = self.chain.generate(tx.x.shape[0], channel_generator)
        if mode == "analog":
            y, state = self.chain.apply(tx.x, real, self.point.no, noise_generator)
        else:
            y, state = self.chain.transmit(tx.x, real, self.point.no, noise_generator)
        return RxSignal(y=y, state=state, tx_meta=dict(tx.meta, payload_bits=tx.payload_bits))

    # -- receiver
    @torch.no_grad()
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        cond, extras, outage = self.receive(rx)
        x = self.sampler.sample(cond, generator)
        extras.setdefault("transmit", self.config.transmit)
        return Decoded(images=x, outage=outage, payload_bits=rx.tx_meta.get("payload_bits"), nfe=self.sampler.nfe,
                       extras=extras)

    def receive(self, rx: RxSignal) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """The receiver's condition ``[B, K+1, H, W]``, its extras and the outage flags (no sampling)."""
        mode = self.config.transmit
        h, w = self.point.image_shape
        k = self.num_classes
        truth = rx.tx_meta["eval_present"]
        if mode == "paper":
            present = rx.tx_meta["present"]  # side information of the paper's setting
            cond = self._clean_up(rx.y, present)
            b = cond.shape[0]
            return cond, {"side_bits": k, "cbr_defined": False}, torch.zeros(b, dtype=torch.bool)
        if mode == "analog":
            return self._receive_analog(rx, truth, h, w, k)
        return self._receive_digital(rx, h, w, k)

    def _clean_up(self, maps: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """FDS (if on), then the absent class slots set to zero (:func:`.model.clean_up`)."""
        return clean_up(maps, present, self.config.fds)

    def _receive_analog(self, rx, truth, h, w, k):
        r = self.config.side_repeat
        y = rx.y / rx.state.power_scale[:, None]  # the chain normalised x by power_scale
        reals = torch.stack([y.real, y.imag], dim=-1).reshape(y.shape[0], -1).float()
        b = reals.shape[0]
        maps = torch.zeros(b, k + 1, h, w, device=reals.device)
        present = torch.zeros(b, k, dtype=torch.bool, device=reals.device)
        pools = []
        for i in range(b):
            present[i] = reals[i, : k * r].reshape(r, k).mean(0) > 0
            p = int(present[i].sum())
            f = pool_factor(p, h, w, self.budget, k, r)
            ph, pw = math.ceil(h / f), math.ceil(w / f)
            vals = reals[i, k * r: k * r + (p + 1) * ph * pw].reshape(p + 1, ph, pw)
            up = F.interpolate(vals[None], size=(h, w), mode="nearest")[0]
            slots = torch.cat([present[i], torch.ones(1, dtype=torch.bool, device=reals.device)])
            maps[i, slots] = up
            pools.append(f)
        cond = self._clean_up(maps, present)
        side_ok = (present.cpu() == truth.cpu()).all(dim=1)
        extras = {"pool": torch.tensor(pools), "map_symbols": rx.tx_meta["map_symbols"], "side_bits": k,
                  "side_ok": side_ok, "cbr_defined": True}
        return cond, extras, ~side_ok

    def _receive_digital(self, rx, h, w, k):
        bits_hat, cw_ok = self.chain.decode(rx.y)
        b = bits_hat.shape[0]
        cond = torch.zeros(b, k + 1, h, w, device=self.point.device)
        outage = torch.ones(b, dtype=torch.bool)
        for i in range(b):
            hh, ww, payload = parse_stream(bits_hat[i], self.capacity_bits)
            try:
                raw = np.frombuffer(zlib.decompress(payload), dtype=np.uint8)
            except zlib.error:
                continue
            if hh < 1 or ww < 1 or raw.size != hh * ww or hh > h or ww > w:
                continue
            idx = torch.from_numpy(raw.reshape(hh, ww).astype(np.int64))[None, None].float()
            idx = F.interpolate(idx, size=(h, w), mode="nearest")[0, 0].long()
            lab, edge = idx // 2, idx % 2
            one = F.one_hot(lab.clamp(max=k), k + 1).permute(2, 0, 1).float()[:k]  # id k = unlabelled
            cond[i] = torch.cat([one, edge[None].float()]).to(cond.device)
            outage[i] = False
        if self.config.fds and self.net.fds_trained:
            # the exact map is not denoised, but a model trained on FDS-processed maps (fds_training)
            # has only ever seen FDS outputs: show it the map as it learnt maps look (absent class
            # slots are all zero and FDS keeps them so: nothing to re-insert)
            cond = fds(cond)
        extras = {"downsample": rx.tx_meta["downsample"], "map_symbols": rx.tx_meta["map_symbols"], "side_bits": 0,
                  "crc_ok": cw_ok.all(dim=1).cpu(), "cbr_defined": True}
        return cond, extras, outage
