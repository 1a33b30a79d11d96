"""The separation baseline: a classical source codec over CRC + 5G LDPC + QAM, and its capacity bound.

**Transmitter** (:class:`SeparationMethod`, scenario ``kind: separation``), per image::

    image -> codec at the best quality that fits the budget (bisection, cached per image)
          -> stream = [W:16][H:16][length:L][payload][random padding]   (MSB first)
          -> DigitalChain: CRC24A per codeword -> 5G LDPC -> QAM -> link -> LLR -> BP -> CRC check

* **MCS.** ``mcs: fixed`` uses ``modulation`` and ``code_rate`` from the scenario at every CSNR
  (this reproduces the cliff effect); ``mcs: adaptive`` picks, per CSNR, the highest-efficiency
  entry of :data:`linksim.codecs.mcs.MCS_TABLE` whose image error rate in the committed AWGN BLER
  table stays below ``target_bler`` (:func:`~linksim.codecs.mcs.select_mcs`; no simulation at run
  time). When no entry meets the target, the most robust one is used.
* **Codewords.** ``C`` codewords of length ``n`` fill the ``N = ρ·3HW`` data symbols
  (:func:`~linksim.codecs.mcs.codeword_layout`: ``C = max(1, N log2M // n_target)``, ``n =
  floor(N log2M / C)`` rounded down to a multiple of log2 M, ``k = round(code_rate·n)`` incl. CRC).
  ``channel_uses`` = ``C n / log2 M <= N`` symbols actually sent.
* **Budget.** The chain carries ``C (k - 24)`` information bits (DESIGN.md §3). From these the
  header is taken: the codec's side header (W and H, 16 bits each,
  :data:`~linksim.codecs.classical.HEADER_BITS`) and a payload length field of ``L`` bits
  (``L`` = bits of the largest byte count that fits; both ends know it from the MCS). The rest is
  the codec's budget, ``bit_budget(cbr, H, W, log2M, k, n, 24, 32 + L)``. The header travels
  inside the CRC/LDPC-protected stream like the payload: no bit is assumed to arrive for free.
* **Padding.** Unused bits after the payload are uniform random bits (from the encode generator),
  so the QAM symbols stay uniform and the transmit power per image stays 1 (zero padding would
  map to a few constellation points).
* **Source outage.** When even the worst quality does not fit, the length field is 0: the
  receiver shows the fallback image and the row is an outage at every CSNR. When not even the
  header fits (fewer than ``32 + L`` information bits, e.g. CBR 1/384 at a low-rate MCS), the
  stream is padding only: an outage too.

**Receiver.** If every codeword passes its CRC, the payload is decoded (bit-exactly the codec's own
decode). Otherwise ``crc_failure`` decides: ``fallback`` (default) shows the fallback image and
reports an outage; ``decode_anyway`` parses the erroneous header (a wrong W/H or an impossible
length is a fallback) and hands the erroneous payload to the codec's
:meth:`~linksim.codecs.classical.SourceCodec.safe_decode`; a stream that still decodes is used
(``outage`` false, ``crc_ok`` false), one that does not is the fallback (``outage`` true).
The **fallback image** is uniform mid-grey (0.5): after a failed CRC a real receiver knows nothing
about the image but its size, and a grey frame is what an error-concealment-less decoder shows.
It minimises the worst-case per-pixel error without any side information.

**HARQ** (``harq: {mode: chase|ir, max_tx, feedback_delay_s}``, :class:`HarqSettings`): each
codeword is acknowledged on its own CRC and resent while it fails, up to ``max_tx`` times, with
Chase combining or incremental redundancy (:mod:`linksim.phy.harq`). The method then declares
``per_message_channel``: the engine runs its channel when the message takes the channel, and the
message holds it for ``transmissions`` first-transmission airtimes plus ``feedback_delay_s`` per
extra round (:class:`~linksim.codecs.base.AirUse`). Per-image extras with or without HARQ:
``transmissions`` (mean per codeword), ``residual_bler`` (codewords failing after their last
transmission / C) and ``goodput`` (payload bits of a delivered image per channel use spent).

**The bound** (:class:`IdealSeparationBound`, ``kind: ideal``): ``floor(ρ·3HW·log2(1 + snr))``
bits delivered without error (the capacity-achieving separation limit at infinite block length),
minus the codec's 32-bit side header, filled by the same codec. It is not an achievable method:
the reports draw ``kind: ideal`` dashed as a bound. On fading channels ``snr`` is the average
CSNR, so the AWGN capacity used is an upper bound of the ergodic capacity (Jensen).

Fitted payloads are cached per process (image hash, codec settings, budget): the budget does not
depend on the CSNR, so every CSNR point of a sweep reuses the fit of the first.
"""

from __future__ import annotations

import copy
import hashlib
import math

import numpy as np
import torch

from .base import AirUse, Decoded, ImageMethod, OperatingPoint, RxSignal, TxSignal
from .classical import SizeCache, SourceCodec, bit_budget, fit_quality, ideal_budget
from .classical.base import image_hash
from .classical.budget import FitResult
from .mcs import MCS, CodewordLayout, codeword_layout
# the settings are torch-free (the validator reads them); re-exported here for the method's users
from .separation_settings import (DigitalLinkSettings, HarqSettings, IdealBoundSettings,  # noqa: F401
                                  SeparationSettings, link_plan, nr_index, olla_mcs)

__all__ = [
    "SeparationSettings", "DigitalLinkSettings", "HarqSettings", "IdealBoundSettings", "SeparationMethod",
    "IdealSeparationBound",
    "FALLBACK_GREY", "SIDE_BITS", "CRC_BITS", "pack_stream", "parse_stream", "length_field_bits",
    "fit_cached",
]

#: Value of every pixel of the fallback image shown after a CRC failure (see module notes).
FALLBACK_GREY = 0.5
#: Bits of the W and H fields (16 each); equals the codecs' ``HEADER_BITS``.
SIDE_BITS = 32
#: CRC24A per codeword.
CRC_BITS = 24
_CRC = "CRC24A"

# Process-wide caches: payload sizes per (image, codec, quality) and fits per budget.
_SIZES = SizeCache()
_FITS: dict[tuple[str, str, int], FitResult | None] = {}


# ----------------------------------------------------------------------------- stream format
def length_field_bits(capacity_bits: int) -> int:
    """Bits of the payload-length field [bytes] for a stream of ``capacity_bits`` information bits."""
    return max(1, (max(capacity_bits - SIDE_BITS, 0) // 8).bit_length())


def pack_stream(payload: bytes | None, height: int, width: int, capacity_bits: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``[W:16][H:16][len:L][payload][random padding]`` as ``capacity_bits`` float bits (MSB first).

    :param payload: codec bytes, or ``None`` for a source outage (length field 0)
    :param generator: draws the padding bits (uniform; zeros would bias the QAM symbols)
    :output bits: ``[capacity_bits]`` float32 in {0, 1}
    """
    lbits = length_field_bits(capacity_bits)
    payload = payload or b""
    dev = generator.device if generator is not None else "cpu"
    if not payload and SIDE_BITS + lbits > capacity_bits:
        # not even the header fits (a tiny CBR at a low-rate MCS): a source outage with nothing to
        # say -- the stream is all padding, and the receiver's header check gives the fallback
        return torch.randint(0, 2, (capacity_bits,), generator=generator, device=dev).float().cpu()
    if SIDE_BITS + lbits + 8 * len(payload) > capacity_bits:
        raise ValueError(f"payload of {8 * len(payload)} bits does not fit {capacity_bits} bits with header")
    head = [(width, 16), (height, 16), (len(payload), lbits)]
    fields = [np.array([(v >> (w - 1 - i)) & 1 for i in range(w)], dtype=np.uint8) for v, w in head]
    body = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    used = np.concatenate(fields + [body]).astype(np.float32)
    pad = torch.randint(0, 2, (capacity_bits - used.size,), generator=generator, device=dev).float().cpu()
    return torch.cat([torch.from_numpy(used), pad])


def parse_stream(bits: torch.Tensor, capacity_bits: int) -> tuple[int, int, bytes]:
    """Inverse of :func:`pack_stream`: ``(height, width, payload)``; the length is clipped to fit."""
    b = (bits.detach().cpu().numpy() > 0.5).astype(np.uint8)
    lbits = length_field_bits(capacity_bits)

    def num(lo: int, w: int) -> int:
        return int("".join(map(str, b[lo:lo + w])) or "0", 2)

    width, height, length = num(0, 16), num(16, 16), num(32, lbits)
    start = SIDE_BITS + lbits
    length = min(length, (capacity_bits - start) // 8)
    payload = np.packbits(b[start:start + 8 * length]).tobytes()
    return height, width, payload


def fit_cached(codec: SourceCodec, image: torch.Tensor, budget_bits: int) -> FitResult | None:
    """:func:`~linksim.codecs.classical.fit_quality` memoised per (image, codec, budget) in this process."""
    key = (image_hash(image), codec.cache_key, int(budget_bits))
    if key not in _FITS:
        try:
            _FITS[key] = fit_quality(codec, image, int(budget_bits), _SIZES)
        except ValueError:
            # Some encoders fail at their extreme qualities on small images (vvenc at QP 0 below
            # ~256 px): such qualities can never be chosen, so fit on the grid below them.
            _FITS[key] = fit_quality(_working_grid(codec, image), image, int(budget_bits), _SIZES)
    return _FITS[key]


def _working_grid(codec: SourceCodec, image: torch.Tensor) -> SourceCodec:
    """A copy of ``codec`` whose quality grid stops below the best qualities that fail to encode."""
    qs = list(codec.qualities)
    while qs:
        try:
            codec.encode(image, qs[-1])
            break
        except ValueError:
            qs.pop()
    if not qs:
        raise ValueError(f"{codec.name}: no quality of the grid encodes this image")
    view = copy.copy(codec)
    view.qualities = tuple(qs)  # payload sizes are unchanged, so the size cache stays valid
    return view


def _child_generator(generator: torch.Generator, tag: str, index: int) -> torch.Generator:
    """A generator seeded from ``generator``'s seed, ``tag`` and ``index`` (deterministic; the
    draws of transmission ``index`` never depend on how many numbers the parent has drawn)."""
    h = hashlib.blake2b(f"{generator.initial_seed()}|{tag}|{index}".encode(), digest_size=8).digest()
    return torch.Generator(device=generator.device).manual_seed(int.from_bytes(h, "little") & (2**63 - 1))


def _grey_like(images_shape: tuple[int, ...], device) -> torch.Tensor:
    return torch.full(images_shape, FALLBACK_GREY, dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------- the method
class SeparationMethod(ImageMethod):
    """``kind: separation``: source codec + CRC + 5G LDPC + QAM over the scenario's link.

    :param config: :class:`SeparationSettings` (or the engine's config model extending it)
    :param point: :class:`~linksim.codecs.base.OperatingPoint` (``csnr_db``, ``cbr``,
        ``image_shape`` and ``link`` are required)

    Attributes set at construction: ``mcs`` (:class:`~linksim.codecs.mcs.MCS`), ``layout``
    (:class:`~linksim.codecs.mcs.CodewordLayout`), ``chain``
    (:class:`~linksim.phy.chains.DigitalChain`), ``capacity_bits`` (``C (k - 24)``),
    ``budget_bits`` (what the codec may spend), ``codec``.
    """

    extra_columns = ("quality", "mcs", "crc_ok", "codeword_errors", "transmissions", "residual_bler", "goodput",
                     "sinr_eff_db")

    def __init__(self, config, point: OperatingPoint):
        super().__init__(config, point)
        self.harq = config.harq
        self.abstract = getattr(config, "phy", "bit_true") == "abstract"
        self.codec = config.build_codec()
        self.mcs, self.layout = self.plan(config, point)
        self._links: dict[str, tuple] = {}
        self.olla = None
        if config.mcs == "olla":
            from linksim.phy.abstraction import OuterLoop

            self.olla = OuterLoop(config.target_bler, config.olla_step_db, point.num_symbols, point.csnr_db,
                                  device=point.device)
        self.abstraction = None
        if self.abstract or self.olla is not None:
            from linksim.phy.abstraction import PhyAbstraction

            self.abstraction = PhyAbstraction(point.device)
        # with HARQ a message's airtime follows its retransmissions, and OLLA adapts to the messages
        # before it: the engine runs the channel when the message takes it (linksim.des)
        self.per_message_channel = self.harq is not None or self.olla is not None
        self._select(self.mcs, self.layout)

    def _select(self, mcs: MCS, layout: CodewordLayout | None = None) -> None:
        """Use ``mcs``: its layout, chain, capacity and codec budget (built once per MCS)."""
        if mcs.label not in self._links:
            from linksim.phy.chains import DigitalChain

            point = self.point
            layout = layout or codeword_layout(point.num_symbols, mcs.bits_per_symbol, mcs.code_rate,
                                               self.config.n_target)
            chain = DigitalChain(point.link, layout.bits_per_symbol, layout.k, layout.n,
                                 num_codewords=layout.num_codewords, crc=_CRC, device=point.device,
                                 num_iter=self.config.ldpc_iterations, num_symbols=point.num_symbols)
            header = SIDE_BITS + length_field_bits(chain.num_info_bits)
            h, w = point.image_shape
            budget = bit_budget(point.cbr, h, w, layout.bits_per_symbol, layout.k, layout.n, CRC_BITS, header)
            self._links[mcs.label] = (mcs, layout, chain, header, budget)
        self.mcs, self.layout, self.chain, self.header_bits, self.budget_bits = self._links[mcs.label]
        self.capacity_bits = self.chain.num_info_bits
        self.nr_index = nr_index(self.mcs) if self.abstraction is not None else None

    #: the MCS and codeword layout at a point (static; :func:`linksim.codecs.separation_settings.link_plan`)
    plan = staticmethod(link_plan)

    def grid(self):
        return self.chain.grid()

    # -- transmitter
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TxSignal:
        """``[B, 3, H, W]`` -> information bits ``[B, capacity_bits]`` (see module notes)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W]; got {tuple(images.shape)}")
        b, _, h, w = images.shape
        if self.olla is not None:  # this message's MCS, from the reports of the messages before it
            self._select(olla_mcs(int(self.olla.mcs()[0]), self.point.num_symbols, self.config.n_target))
        rows, bits, quality = [], [], []
        for img in images:
            fit = fit_cached(self.codec, img, self.budget_bits)
            rows.append(fit)
            bits.append(fit.bits if fit else 0)
            quality.append(fit.quality if fit else -1)
        streams = torch.stack([pack_stream(f.payload if f else None, h, w, self.capacity_bits, generator) for f in rows])
        outage = torch.tensor([f is None for f in rows])
        meta = {"quality": torch.tensor(quality), "mcs": self.mcs.label, "k": self.layout.k,
                "n": self.layout.n, "num_codewords": self.layout.num_codewords,
                "budget_bits": self.budget_bits, "capacity_bits": self.capacity_bits}
        return TxSignal(x=streams.to(self.chain.device), payload_bits=torch.tensor(bits), outage=outage, meta=meta)

    # -- channel
    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        """Without HARQ: LLRs ``[B, C, n]`` of one transmission (decoded by :meth:`decode`).

        With ``harq``: the whole ACK/NACK loop (:func:`linksim.phy.harq.harq_transmit`): each
        codeword is decoded after each of its transmissions (the ACK needs it), those whose CRC
        fails are sent again, up to ``max_tx``. Transmission 0 uses the generators handed in (so it
        is the transmission a run without HARQ makes); transmission ``t >= 1`` draws fresh noise from
        a generator seeded by ``(seed of the generator handed in, t)``. Its channel: a static one
        is the first round's realisation (block fading over the HARQ process); a time-varying one
        (moving TDL) is sampled from the round's start, ``t0 + used·airtime + t·feedback_delay_s``
        (``used``: the earlier rounds' airtime in whole transmissions; the times and airtime come
        from :func:`~linksim.phy.links.current_transmit_times`).
        ``rx.y`` is then the :class:`~linksim.phy.harq.HarqResult` and ``rx.air`` its airtime.
        """
        meta = dict(tx.meta, payload_bits=tx.payload_bits)
        batch = tx.x.shape[0]
        chain = self.chain  # the MCS of this message (OLLA selects it in encode)
        if not self.per_message_channel and not self.abstract:
            realization = chain.generate(batch, channel_generator)
            with torch.no_grad():
                llr, state = chain.transmit(tx.x, realization, self.point.no, noise_generator)
            return RxSignal(y=llr, state=state, tx_meta=meta)
        from linksim.phy.harq import harq_transmit
        from linksim.phy.links import ChannelRealization, current_transmit_times

        fb = self.harq.feedback_delay_s if self.harq is not None else 0.0
        times = current_transmit_times()
        first: list[ChannelRealization] = []

        def draw(t: int, used: torch.Tensor):
            # a static channel is block fading over the message's HARQ process: every round sees
            # the first round's realisation (fresh noise); a moving TDL continues its process and
            # is sampled when round t starts: after the airtime of the rounds before it and t
            # feedback waits
            if t == 0:
                first.append(chain.generate(batch, channel_generator))
                return first[0], noise_generator
            noise = _child_generator(noise_generator, "harq-noise", t)
            if not chain.time_varying:
                return first[0], noise
            if times is None or times.airtime_s is None:
                raise ValueError("HARQ over a time-varying channel needs the transmit times and airtime "
                                 "of the messages (linksim.phy.links.transmit_times)")
            later = times.later([float(u) * times.airtime_s + t * fb for u in used])
            return chain.generate(batch, _child_generator(channel_generator, "harq-channel", t), later), noise

        mode, max_tx = (self.harq.mode, self.harq.max_tx) if self.harq is not None else ("chase", 1)
        with torch.no_grad():
            if self.abstract:
                res, sinr0 = self._abstract_transmit(tx.x, draw, max_tx)
            else:
                res = harq_transmit(chain, tx.x, self.point.no, draw, mode, max_tx)
                sinr0 = 1.0 / res.state.no_eff.real[:, : chain.num_coded_bits // chain.num_bits_per_symbol]
        if self.abstraction is not None:
            # the receiver's report: one effective SINR of the first transmission (EESM, this MCS)
            eff = self.abstraction.effective_sinr(sinr0, self.nr_index if self.nr_index is not None else 0)
            meta["sinr_eff_db"] = (10 * torch.log10(eff.clamp_min(1e-30))).cpu()
            if self.olla is not None:
                for i in range(batch):  # in message order (one message per call in the engine)
                    self.olla.report([bool(res.first_ok[i].all())], [float(eff[i])])
        air = AirUse(transmissions=res.transmissions.float().mean(dim=1).cpu(),
                     waits_s=(res.rounds - 1).clamp_min(0).float().cpu() * fb)
        return RxSignal(y=res, state=res.state, tx_meta=meta, air=air)

    def _abstract_transmit(self, bits: torch.Tensor, draw, max_tx: int):
        """``phy: abstract``: each codeword fails with the table BLER at the EESM effective SINR of
        its symbols; with chase HARQ the SINRs of its copies add up per symbol (maximum-ratio
        combining of repeated symbols). One uniform ``u`` per codeword, drawn with the first
        transmission's noise generator after the link's own draws: the codeword is still in error
        after transmission ``t`` while ``u`` is below the BLER of the combination of its first
        ``t + 1`` copies (that BLER falls with every copy, so the failures are nested).
        Returns ``(HarqResult, first-transmission SINR [B, C·L])``; ``bits_hat`` are the sent bits
        (a failed codeword is never parsed: ``crc_failure: fallback``)."""
        from linksim.phy.harq import HarqResult

        chain = self.chain
        batch, c = bits.shape[0], chain.num_codewords
        active = torch.ones(batch, c, dtype=torch.bool, device=chain.device)
        sent = torch.zeros(batch, c, dtype=torch.long, device=chain.device)
        combined, first, first_ok, u = None, None, None, None
        for t in range(max_tx):
            if not bool(active.any()):
                break
            realization, gen = draw(t, sent.sum(dim=1).double().cpu() / c)
            sinr = chain.codeword_sinr(bits, realization, self.point.no, gen)
            if t == 0:
                first = sinr
                u = torch.rand(batch, c, generator=gen, device=gen.device).to(chain.device)
            # an acknowledged codeword is not resent: its combination stops growing
            combined = sinr if combined is None else combined + sinr * active[..., None]
            sent += active.long()
            p = self.abstraction.bler(self.nr_index, self.layout.k,
                                      self.abstraction.effective_sinr(combined, self.nr_index)).to(chain.device)
            active &= u < p.clamp(0.0, 1.0)
            if first_ok is None:
                first_ok = ~active.clone()
        return HarqResult(bits_hat=bits.to(chain.device), crc_ok=~active, first_ok=first_ok, transmissions=sent,
                          rounds=sent.max(dim=1).values, state=None), first.reshape(batch, -1)

    # -- receiver
    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        """LDPC decoding of ``rx.y`` (LLRs ``[B, C, n]``), then :meth:`decode_bits`.

        With HARQ the codewords were decoded in the ACK/NACK loop already (:meth:`channel`): their
        decoding is part of the HARQ round trip (``feedback_delay_s``), not of the receiver's
        service time, which is the source decoding alone."""
        from linksim.phy.harq import HarqResult

        if isinstance(rx.y, HarqResult):
            return self.decode_bits(rx.y.bits_hat, rx.y.crc_ok, rx.tx_meta,
                                    transmissions=rx.y.transmissions.float().mean(dim=1).cpu())
        # LDPC decoding belongs to the receiver: it is part of the timed service time
        with torch.no_grad():
            bits_hat, cw_ok = self.chain.decode(rx.y)
        return self.decode_bits(bits_hat, cw_ok, rx.tx_meta)

    def decode_bits(self, bits_hat: torch.Tensor, cw_ok: torch.Tensor, tx_meta: dict,
                    transmissions: torch.Tensor | None = None) -> Decoded:
        """CRC verdict per image; source-decode, or apply the ``crc_failure`` policy. Never raises.

        :param bits_hat: ``[B, capacity_bits]`` decoded info bits (CRC removed)
        :param cw_ok: ``[B, C]`` bool, CRC verdict per codeword (after the last transmission)
        :param tx_meta: what the transmitter recorded (``payload_bits``, ``quality``)
        :param transmissions: ``[B]`` mean transmissions per codeword (``None``: 1, no HARQ)

        Extras per image: ``transmissions`` (mean over the image's codewords; 1 without HARQ, at
        most ``max_tx``), ``residual_bler`` (fraction of its codewords still failing their CRC
        after the last transmission) and ``goodput`` [bit per channel use]: the source payload
        bits of an image whose every codeword passed, divided by the channel uses spent on it
        (``N x transmissions``); 0 for an image not delivered.
        """
        h, w = self.point.image_shape
        crc_ok = cw_ok.all(dim=1).cpu()
        out = _grey_like((bits_hat.shape[0], 3, h, w), "cpu")
        outage = torch.ones(bits_hat.shape[0], dtype=torch.bool)
        payload_bits = torch.zeros(bits_hat.shape[0], dtype=torch.long)
        for i in range(bits_hat.shape[0]):
            if not crc_ok[i] and self.config.crc_failure == "fallback":
                continue
            hh, ww, payload = parse_stream(bits_hat[i], tx_meta.get("capacity_bits", self.capacity_bits))
            payload_bits[i] = 8 * len(payload)
            if (hh, ww) != (h, w) or not payload:  # corrupted header, or a source outage
                continue
            res = self.codec.safe_decode(payload, h, w)
            if res.ok and res.image is not None:
                out[i], outage[i] = res.image, False
        sent = tx_meta.get("payload_bits")
        sent = sent if sent is not None else payload_bits
        b = bits_hat.shape[0]
        transmissions = torch.ones(b) if transmissions is None else transmissions.float().cpu()
        delivered = crc_ok & ~outage
        goodput = torch.where(delivered, sent.float().cpu(), torch.zeros(b)) / (self.point.num_symbols * transmissions)
        return Decoded(images=out.to(self.point.device), outage=outage,
                       payload_bits=sent,
                       extras={"crc_ok": crc_ok, "quality": tx_meta.get("quality"),
                               "mcs": tx_meta.get("mcs", self.mcs.label),
                               "codeword_errors": (~cw_ok).sum(dim=1).cpu(),
                               "transmissions": transmissions,
                               "residual_bler": (~cw_ok).float().mean(dim=1).cpu(),
                               "goodput": goodput,
                               "sinr_eff_db": tx_meta.get("sinr_eff_db")})


class IdealSeparationBound(ImageMethod):
    """``kind: ideal``: the codec fed ``floor(ρ·3HW·log2(1+snr))`` error-free bits (a bound).

    :param config: :class:`IdealBoundSettings`
    :param point: :class:`~linksim.codecs.base.OperatingPoint`

    ``capacity_bits`` = ``floor(ρ·3HW·log2(1 + 10^(CSNR/10)))``; ``budget_bits`` = that minus the
    codec's 32-bit side header. No channel is simulated: at capacity the bits arrive intact.
    """

    extra_columns = ("quality", "capacity_bits")
    #: no channel is simulated (the bound reads only the CSNR), so a pilot-free link suits it
    needs_channel_estimate = False

    def __init__(self, config, point: OperatingPoint):
        super().__init__(config, point)
        self.codec = config.build_codec()
        h, w = point.image_shape
        self.capacity_bits = math.floor(ideal_budget(point.cbr, h, w, 1.0 / point.no))
        self.budget_bits = max(self.capacity_bits - self.codec.header_bits, 0)

    def grid(self):
        from linksim.phy.chains import grid_info

        return grid_info(self.point.link, self.point.num_symbols)

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TxSignal:
        fits = [fit_cached(self.codec, img, self.budget_bits) for img in images]
        return TxSignal(x=images, payload_bits=torch.tensor([f.bits if f else 0 for f in fits]),
                        outage=torch.tensor([f is None for f in fits]),
                        meta={"fits": fits, "quality": torch.tensor([f.quality if f else -1 for f in fits])})

    def channel(self, tx: TxSignal, channel_generator: torch.Generator, noise_generator: torch.Generator) -> RxSignal:
        # Capacity-achieving code: the payload arrives without error (nothing to simulate).
        return RxSignal(y=[f.payload if f else None for f in tx.meta["fits"]], state=None,
                        tx_meta={"payload_bits": tx.payload_bits, "quality": tx.meta["quality"]})

    def decode(self, rx: RxSignal, generator: torch.Generator | None = None) -> Decoded:
        h, w = self.point.image_shape
        out = _grey_like((len(rx.y), 3, h, w), "cpu")
        outage = torch.ones(len(rx.y), dtype=torch.bool)
        for i, payload in enumerate(rx.y):
            if payload is not None:
                out[i], outage[i] = self.codec.decode(payload, h, w), False
        return Decoded(images=out.to(self.point.device), outage=outage, payload_bits=rx.tx_meta["payload_bits"],
                       extras={"quality": rx.tx_meta["quality"], "capacity_bits": self.capacity_bits})

