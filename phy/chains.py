"""The two entry points of the physical layer: :class:`AnalogChain` and :class:`DigitalChain`.

::

    analog:   x [B, N] --normalise (per image)--> --interleave--> Link.transmit --> de-interleave
              --> y_eq [B, N], ChannelState (forward_operator re-runs it noise-free)
    digital:  bits --CRC--> --LDPC--> --QAM--> Link.transmit --> LLR demap (no_eff)
              --> LDPC decode --> CRC check --> bits_hat, crc_ok

A :class:`~linksim.phy.links.Link` owns channel, grid, estimation and equalisation; a chain puts
power normalisation and interleaving (analog) or coding and modulation (digital) around it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn

from .channels import FlatLink, _as_batch
from .fec import CRC, LDPC, crc_length
from .impairments import RandomInterleaver
from .links import ChannelRealization, GridInfo, Link, LinkConfig, LinkOutput, TransmitTimes
from .mapping import QAMDemapper, QAMMapper, bits_per_symbol
from .refs import import_ref

__all__ = ["link_class", "build_link", "grid_info", "ChannelState", "AnalogChain", "DigitalChain",
           "DigitalRx"]



def _package_links() -> tuple[type[Link], ...]:
    """The link classes of this package (each declares its ``kinds``)."""
    from .ofdm import OFDMLink  # noqa: PLC0415 - Sionna's OFDM blocks, imported when first needed

    return (FlatLink, OFDMLink)


def link_class(cfg: LinkConfig | str) -> type[Link]:
    """The :class:`Link` subclass that carries ``cfg``: ``cfg.link`` when set (the engine sets the class
    registered for the channel kind, :data:`linksim.registry.CHANNELS`), else the class of this
    package whose :attr:`Link.kinds` declare ``cfg.kind`` (a bare kind string is looked up the same way).

    >>> link_class(LinkConfig(kind="rayleigh")).__name__
    'FlatLink'
    """
    if isinstance(cfg, LinkConfig) and cfg.link is not None:
        return import_ref(cfg.link)  # a class, or "package.module:Class" (the registry's reference)
    kind = cfg.kind if isinstance(cfg, LinkConfig) else cfg
    classes = _package_links()
    for cls in classes:
        if kind in cls.kinds:
            return cls
    known = ", ".join(k for cls in classes for k in cls.kinds)
    raise ValueError(f"channel kind must be one of ({known}) or given with its class (LinkConfig.link); "
                     f"got {kind!r}")


def build_link(cfg: LinkConfig, num_symbols: int, device="cpu", precision: str = "single") -> Link:
    """Instantiate the link for ``cfg`` carrying ``num_symbols`` data symbols per example.

    :param precision: ``"single"`` or ``"double"`` (passed on when the link class accepts it)
    """
    cls = link_class(cfg)
    if "precision" in inspect.signature(cls.__init__).parameters:
        return cls(cfg, num_symbols, device=device, precision=precision)
    if precision != "single":
        raise ValueError(f"{cls.__name__} does not support precision={precision!r}")
    return cls(cfg, num_symbols, device=device)


def grid_info(cfg: LinkConfig, num_symbols: int) -> GridInfo:
    """How ``num_symbols`` data symbols per example are laid out for ``cfg`` (overhead included).

    Uses the link class's static ``grid_info(cfg, num_symbols)`` when it has one, else builds the
    link on the CPU and asks its :meth:`~Link.grid`. Raises
    :class:`~linksim.phy.links.GridError` (a ``ValueError``) when the symbols do not fit the grid.
    """
    cls = link_class(cfg)
    static = getattr(cls, "grid_info", None)
    if callable(static):
        return static(cfg, num_symbols)
    return build_link(cfg, num_symbols, "cpu").grid()


@dataclass
class ChannelState:
    """What a receiver may legitimately know about one transmission (+ the true channel).

    :param no: ``[B]`` linear ``N0`` (``CN(0, N0)`` per complex sample)
    :param no_eff: ``[B, N]`` effective noise variance of each equalised symbol, in the order of
        ``y_eq`` (de-interleaved)
    :param h_hat: the estimated channel in the link's layout and in *on-air* (interleaved) order
        (flat: ``[B, N]``; OFDM: ``[B, F, S, M]``)
    :param err_var: channel-estimation error variance (``None`` with perfect CSI)
    :param perm: ``[N]`` int64 interleaver permutation (on air ``i`` carries ``x[:, perm[i]]``),
        ``None`` without interleaving
    :param power_scale: ``[B]`` transmit normaliser: the link carried ``x * power_scale[:, None]``
    :param h_true: the true channel, for evaluation (oracle receivers) only
    :param normalize: whether :meth:`forward_operator` re-normalises its input (analog chains)
    """

    no: torch.Tensor
    no_eff: torch.Tensor
    h_hat: torch.Tensor | None
    err_var: torch.Tensor | None
    perm: torch.Tensor | None
    power_scale: torch.Tensor
    h_true: torch.Tensor | None
    normalize: bool = True
    link: Link | None = field(default=None, repr=False)
    realization: ChannelRealization | None = field(default=None, repr=False)
    output: LinkOutput | None = field(default=None, repr=False)

    def forward_operator(self, x: torch.Tensor, use_true_channel: bool = False) -> torch.Tensor:
        """Noise-free, differentiable ``A(x)``: ``[B, N]`` complex -> ``[B, N]`` complex.

        Normalise *this* ``x`` to unit power per image (analog chains), interleave with
        :attr:`perm`, run the link with the estimated channel (or the true one) and the *same*
        equaliser weights, de-interleave. With ``use_true_channel=True`` and the transmitted
        ``x`` the result is ``y_eq`` minus the equalised noise.
        """
        if self.link is None or self.realization is None or self.output is None:
            raise ValueError("this ChannelState carries no link; it cannot re-run the channel")
        x = x.to(self.output.y_eq.dtype)
        if self.normalize:
            x = x * _unit_power_scale(x)[:, None]
        if self.perm is not None:
            x = x[..., self.perm]
        y = self.link.noise_free(x, self.realization, self.output, use_true_channel=use_true_channel)
        if self.perm is not None:
            y = y[..., RandomInterleaver.inverse(self.perm)]
        return y

    # -- the received (un-equalised) domain ---------------------------------------------------
    def _on_air(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, N]`` as the link carries it: unit power (analog chains), interleaved."""
        x = x.to(self.output.y.dtype)
        if self.normalize:
            x = x * _unit_power_scale(x)[:, None]
        return x[..., self.perm] if self.perm is not None else x

    def received(self) -> torch.Tensor:
        """``Y_data`` ``[B, N]``: the received samples on the data positions, *not* equalised,
        in on-air (interleaved) order; OFDM pilot REs are not part of it."""
        if self.link is None or self.output is None:
            raise ValueError("this ChannelState carries no link")
        return self.link.received_data(self.output)

    def transmitted(self, x: torch.Tensor) -> torch.Tensor:
        """``X(x)`` ``[B, N]``: what the data positions carry for ``x`` ``[B, N]`` (normalised,
        interleaved, clipped where configured), on-air order; differentiable."""
        return self.link.tx_data(self._on_air(x))

    def channel_on_data(self, use_true_channel: bool = False) -> torch.Tensor:
        """``Ĥ`` ``[B, N]`` (or the true channel) on the data positions, on-air order."""
        return self.link.data_channel(self.realization, self.output, use_true_channel)

    def forward_received(self, x: torch.Tensor, use_true_channel: bool = False) -> torch.Tensor:
        """Noise-free ``Ĥ ⊙ X(x)`` ``[B, N]`` on the data positions (on-air order): the
        re-simulation that DiffCom's received-grid measurement ``‖Y_data − Ĥ⊙X(x̂0)‖`` compares
        with :meth:`received`. Differentiable."""
        return self.channel_on_data(use_true_channel) * self.transmitted(x)

    def biased_mmse(self, y_data: torch.Tensor) -> torch.Tensor:
        """The receiver side ``Aᵀ``: the *biased* one-tap MMSE equaliser
        ``conj(Ĥ)/(|Ĥ|² + N0 + err_var)`` applied to on-air samples ``y_data`` ``[B, N]``, then
        de-interleaved. AWGN links have no equaliser (identity). Differentiable in ``y_data``."""
        if self.link.cfg.kind == "awgn":
            y = y_data
        else:
            h = self.channel_on_data()
            s = self.no.to(h.real.dtype)[:, None]
            err = self.link.data_err_var(self.output)
            if err is not None:
                s = s + err
            y = h.conj() / (h.abs().square() + s) * y_data
        return y[..., RandomInterleaver.inverse(self.perm)] if self.perm is not None else y


def _draw(link: Link, batch_size: int, generator: torch.Generator, times: TransmitTimes | None):
    """``link.generate`` with ``times`` only when given (a plug-in link may not take the argument;
    the links of this package read :func:`~linksim.phy.links.current_transmit_times` without it)."""
    if times is None:
        return link.generate(batch_size, generator)
    return link.generate(batch_size, generator, times)


def _unit_power_scale(x: torch.Tensor) -> torch.Tensor:
    """``[B]`` factor ``1 / sqrt(mean |x|²)`` per example (``x`` ``[B, N]``); zero rows stay zero."""
    p = x.abs().square().mean(dim=-1)
    return torch.rsqrt(p.clamp_min(torch.finfo(p.dtype).tiny))


class AnalogChain(nn.Module):
    """Continuous complex symbols (JSCC) over a link, with per-image power normalisation.

    :param cfg: link configuration (``cfg.interleave`` switches the symbol interleaver)
    :param num_symbols: ``N`` data symbols per image
    :param device: torch device
    :param precision: ``"single"`` (complex64) or ``"double"`` (complex128, e.g. for gradient
        checks)

    :input x: ``[B, N]`` complex, any scale: each image is normalised to ``mean |x|² = 1`` here
        and the factor is kept in ``ChannelState.power_scale``
    :input no: float or ``[B]``, linear ``N0``
    :output y_eq: ``[B, N]`` complex, equalised, de-interleaved estimates of the *normalised* x
    :output state: :class:`ChannelState`

    >>> chain = AnalogChain(LinkConfig(kind="rayleigh"), 16); g = torch.Generator().manual_seed(0)
    >>> y_eq, state = chain(torch.randn(2, 16, dtype=torch.complex64), 0.1, g)
    >>> y_eq.shape, state.no_eff.shape
    (torch.Size([2, 16]), torch.Size([2, 16]))
    """

    def __init__(self, cfg: LinkConfig, num_symbols: int, device="cpu", precision: str = "single"):
        super().__init__()
        if precision not in ("single", "double"):
            raise ValueError(f"precision must be 'single' or 'double'; got {precision!r}")
        self.cfg = cfg
        self.num_symbols = int(num_symbols)
        self.device = torch.device(device)
        self.cdtype = torch.complex64 if precision == "single" else torch.complex128
        self.link = build_link(cfg, num_symbols, device, precision)
        self.interleaver = RandomInterleaver(num_symbols) if cfg.interleave else None

    def grid(self) -> GridInfo:
        return self.link.grid()

    def generate(self, batch_size: int, generator: torch.Generator, times: TransmitTimes | None = None
                 ) -> ChannelRealization:
        """Draw the channel, then (with interleaving) the permutation, both with ``generator``;
        ``times``: when the examples go on the air (:meth:`Link.generate`)."""
        realization = _draw(self.link, batch_size, generator, times)
        if self.interleaver is not None:
            realization.perm = self.interleaver.draw(generator, self.device)
        return realization

    def apply(self, x, realization: ChannelRealization, no, generator: torch.Generator):
        """Send ``x`` over the frozen ``realization``; returns ``(y_eq, ChannelState)``."""
        if x.dim() != 2 or x.shape[1] != self.num_symbols:
            raise ValueError(f"x must be [B, {self.num_symbols}] complex; got {tuple(x.shape)}")
        x = x.to(device=self.device, dtype=self.cdtype)
        no = _as_batch(no, x.shape[0], x)
        scale = _unit_power_scale(x)
        xs = x * scale[:, None]
        perm = realization.perm if self.interleaver is not None else None
        if self.interleaver is not None and perm is None:
            raise ValueError("realization has no interleaver permutation; draw it with AnalogChain.generate")
        if perm is not None:
            xs = self.interleaver.interleave(xs, perm)
        out = self.link.transmit(xs, realization, no, generator)
        y_eq, no_eff = out.y_eq, out.no_eff
        if perm is not None:
            y_eq = self.interleaver.deinterleave(y_eq, perm)
            no_eff = self.interleaver.deinterleave(no_eff, perm)
        state = ChannelState(no=no if out.no is None else out.no, no_eff=no_eff, h_hat=out.h_hat,
                             err_var=out.err_var, perm=perm,
                             power_scale=scale, h_true=realization.h, normalize=True,
                             link=self.link, realization=realization, output=out)
        return y_eq, state

    def forward(self, x, no, generator: torch.Generator):
        """Draw a channel for ``x.shape[0]`` images and send ``x`` over it."""
        return self.apply(x, self.generate(x.shape[0], generator), no, generator)


@dataclass
class DigitalRx:
    """Output of :meth:`DigitalChain.apply`.

    :param bits_hat: ``[B, num_info_bits]`` float {0, 1}, decoded information bits
    :param crc_ok: ``[B, num_codewords]`` bool (all ``True`` without CRC)
    :param llr: ``[B, num_codewords, n]`` float, channel LLRs per codeword (padding removed)
    :param state: the :class:`ChannelState` of the transmission
    """

    bits_hat: torch.Tensor
    crc_ok: torch.Tensor
    llr: torch.Tensor
    state: ChannelState


class DigitalChain(nn.Module):
    """Bits -> [CRC] -> [5G LDPC] -> QAM -> link -> LLR demapping -> [LDPC decode] -> [CRC check].

    Each example carries ``num_codewords`` codewords of ``n`` coded bits (``k`` information bits
    including the CRC); they are concatenated and mapped to ``num_symbols = ceil(C n / bps)``
    symbols, or to ``num_symbols`` when given (a link whose grid needs a given symbol count, e.g.
    OFDM frames, or a transmission that fills its whole CBR budget). Bits beyond ``C n`` are filler
    that the receiver discards: a fixed pseudo-random pattern, so that filler symbols use the
    constellation uniformly like data (zero bits would put them all on one point).
    LDPC codewords use the 38.212 bit interleaver for the modulation (when ``n`` is a multiple of
    ``bps``, as 38.212 requires; otherwise none). There is no symbol
    interleaver: a codeword occupies consecutive symbols (use ``coherence_symbols`` accordingly).

    Uncoded (``k = n = None``): each "codeword" is a block of ``block_bits`` bits (CRC
    included, if any), sent as is; hard decisions are the LLR signs.

    :param cfg: link configuration
    :param num_bits_per_symbol: 1, 2, 4, 6, 8 (or a modulation name, e.g. ``"16qam"``)
    :param k: LDPC information bits per codeword (incl. CRC), ``None`` for uncoded
    :param n: LDPC codeword bits, ``None`` for uncoded
    :param num_codewords: codewords (blocks) per example
    :param crc: CRC name per codeword (``CRC24A``, ``CRC16``, ...) or ``None``
    :param device: torch device
    :param num_iter: LDPC BP iterations
    :param block_bits: uncoded chains only: bits per block
    :param demapping: ``"app"`` or ``"maxlog"``
    :param num_symbols: symbols per example on the link (at least ``ceil(C n / bps)``; ``None``:
        exactly that)

    Attributes: ``num_info_bits`` (= ``C (k - crc_len)``), ``num_symbols``, ``coderate``
    (``k / n`` incl. CRC, 1 uncoded), ``info_bits_per_codeword``.

    >>> chain = DigitalChain(LinkConfig(), 4, 64, 128, num_codewords=2, crc="CRC16")
    >>> chain.num_info_bits, chain.num_symbols
    (96, 64)
    """

    def __init__(self, cfg: LinkConfig, num_bits_per_symbol, k: int | None, n: int | None,
                 num_codewords: int, crc: str | None = "CRC24A", device="cpu", num_iter: int = 20,
                 block_bits: int = 1024, demapping: str = "app", num_symbols: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.device = torch.device(device)
        self.num_bits_per_symbol = bits_per_symbol(num_bits_per_symbol)
        if num_codewords < 1:
            raise ValueError(f"num_codewords must be positive; got {num_codewords}")
        if (k is None) != (n is None):
            raise ValueError("give both k and n (LDPC) or neither (uncoded)")
        self.num_codewords = int(num_codewords)
        self.crc_length = crc_length(crc)
        if k is None:
            self.ldpc = None
            self.k = self.n = int(block_bits)
        else:
            # the 38.212 bit interleaver needs n to be a multiple of bits per symbol
            bit_il = self.num_bits_per_symbol if n % self.num_bits_per_symbol == 0 else None
            self.ldpc = LDPC(k, n, num_iter=num_iter, num_bits_per_symbol=bit_il, device=device)
            self.k, self.n = int(k), int(n)
        self.info_bits_per_codeword = self.k - self.crc_length
        if self.info_bits_per_codeword < 1:
            raise ValueError(f"k={self.k} leaves no information bits after {crc} ({self.crc_length} bits)")
        self.crc = CRC(crc, self.info_bits_per_codeword, device) if crc is not None else None
        self.num_info_bits = self.num_codewords * self.info_bits_per_codeword
        self.num_coded_bits = self.num_codewords * self.n
        needed = -(-self.num_coded_bits // self.num_bits_per_symbol)
        if num_symbols is not None and num_symbols < needed:
            raise ValueError(f"num_symbols={num_symbols} cannot carry {self.num_codewords} x {self.n} coded bits "
                             f"at {self.num_bits_per_symbol} bits/symbol (needs {needed})")
        self.num_symbols = needed if num_symbols is None else int(num_symbols)
        self.num_pad_bits = self.num_symbols * self.num_bits_per_symbol - self.num_coded_bits
        # filler carries no information: a fixed pattern, not a draw from the caller's generator
        filler = torch.randint(0, 2, (self.num_pad_bits,), generator=torch.Generator().manual_seed(0x5EED))
        self.register_buffer("_filler", filler.to(self.device, torch.float32), persistent=False)
        self.coderate = self.k / self.n
        self.mapper = QAMMapper(self.num_bits_per_symbol, device=device)
        self.demapper = QAMDemapper(self.num_bits_per_symbol, method=demapping, device=device)
        self.link = build_link(cfg, self.num_symbols, device)

    def grid(self) -> GridInfo:
        return self.link.grid()

    @property
    def time_varying(self) -> bool:
        """True when the link's channel changes with time (a TDL with ``speed > 0``)."""
        return bool(getattr(self.link, "time_varying", False))

    def generate(self, batch_size: int, generator: torch.Generator, times: TransmitTimes | None = None
                 ) -> ChannelRealization:
        return _draw(self.link, batch_size, generator, times)

    def encode(self, bits: torch.Tensor, rv: int | None = None) -> torch.Tensor:
        """Information bits ``[B, num_info_bits]`` -> symbols ``[B, num_symbols]`` complex64.

        :param rv: HARQ redundancy version (0..3) of every codeword (``None``: the plain codeword,
            the same as RV 0); see :class:`~linksim.phy.fec.LDPC`
        """
        if bits.dim() != 2 or bits.shape[1] != self.num_info_bits:
            raise ValueError(f"bits must be [B, {self.num_info_bits}]; got {tuple(bits.shape)}")
        b = bits.to(self.device, torch.float32).reshape(bits.shape[0], self.num_codewords, -1)
        if self.crc is not None:
            b = self.crc.encode(b)
        if self.ldpc is not None:
            b = self.ldpc.encode(b) if rv is None else self.ldpc.encode(b, rv=[rv]).squeeze(-2)
        elif rv not in (None, 0):
            raise ValueError("redundancy versions need an LDPC code (k, n)")
        b = b.reshape(bits.shape[0], self.num_coded_bits)
        if self.num_pad_bits:
            b = torch.cat([b, self._filler.expand(b.shape[0], -1)], dim=1)
        return self.mapper(b)

    def transmit(self, bits, realization: ChannelRealization, no, generator: torch.Generator,
                 rv: int | None = None):
        """The channel half: ``bits`` ``[B, num_info_bits]`` -> LLRs over the frozen ``realization``.

        :param rv: HARQ redundancy version sent (``None``: the plain codeword)
        :output llr: ``[B, num_codewords, n]`` channel LLRs (``ln P(1)/P(0)``) of the coded bits
        :output state: :class:`ChannelState`
        """
        x = self.encode(bits, rv)
        batch = x.shape[0]
        no = _as_batch(no, batch, x)
        out = self.link.transmit(x, realization, no, generator)
        llr = self.demapper(out.y_eq, out.no_eff)[:, : self.num_coded_bits]
        llr = llr.reshape(batch, self.num_codewords, self.n)
        state = ChannelState(no=no if out.no is None else out.no, no_eff=out.no_eff, h_hat=out.h_hat, err_var=out.err_var,
                             perm=None, power_scale=torch.ones_like(no), h_true=realization.h,
                             normalize=False, link=self.link, realization=realization, output=out)
        return llr, state

    def decode(self, llr: torch.Tensor):
        """The receiver half: LLRs ``[B, C, n]`` -> (``bits_hat`` ``[B, num_info_bits]``, ``crc_ok`` ``[B, C]``).

        Kept apart from :meth:`transmit` so that a receiver's service time can include FEC decoding.
        """
        batch = llr.shape[0]
        b = self.ldpc.decode(llr) if self.ldpc is not None else (llr > 0).to(torch.float32)
        if self.crc is not None:
            b, ok = self.crc.decode(b)
        else:
            ok = torch.ones(batch, self.num_codewords, dtype=torch.bool, device=b.device)
        return b.reshape(batch, self.num_info_bits), ok

    def codeword_sinr(self, bits, realization: ChannelRealization, no, generator: torch.Generator) -> torch.Tensor:
        """Post-equalisation SINR of the symbols of each codeword, for a PHY abstraction (no decoding).

        Sends ``bits`` over the link like :meth:`transmit` (same draws) but stops after equalisation:
        ``1 / no_eff`` of each data symbol (unit-power constellation; unbiased equaliser).

        :output sinr: ``[B, num_codewords, n / bps]`` linear (needs ``n`` a multiple of bits per symbol)
        """
        if self.n % self.num_bits_per_symbol:
            raise ValueError(f"codeword_sinr needs n={self.n} to be a multiple of {self.num_bits_per_symbol} bits/symbol")
        x = self.encode(bits)
        no = _as_batch(no, x.shape[0], x)
        out = self.link.transmit(x, realization, no, generator)
        per_cw = self.n // self.num_bits_per_symbol
        sinr = 1.0 / out.no_eff.real.clamp_min(torch.finfo(torch.float32).tiny)
        return sinr[:, : self.num_codewords * per_cw].reshape(x.shape[0], self.num_codewords, per_cw)

    def decode_codewords(self, llr: torch.Tensor, rv: list[int] | tuple[int, ...]):
        """HARQ decoding of single codewords: the LLRs of all their transmissions combined.

        :param llr: ``[A, T, n]`` channel LLRs of ``A`` codewords, transmission ``t`` carrying
            redundancy version ``rv[t]`` (a codeword not sent in transmission ``t`` has LLR 0 there)
        :output bits: ``[A, info_bits_per_codeword]`` decoded information bits (CRC removed)
        :output ok: ``[A]`` bool, the CRC passes (all ``True`` without CRC)
        """
        if self.ldpc is None:
            raise ValueError("HARQ combining needs an LDPC code (k, n)")
        b = self.ldpc.decode(llr, rv=rv)
        if self.crc is not None:
            return self.crc.decode(b)
        return b, torch.ones(b.shape[0], dtype=torch.bool, device=b.device)

    def apply(self, bits, realization: ChannelRealization, no, generator: torch.Generator) -> DigitalRx:
        """Send ``bits`` ``[B, num_info_bits]`` over the frozen ``realization`` and decode them."""
        llr, state = self.transmit(bits, realization, no, generator)
        bits_hat, ok = self.decode(llr)
        return DigitalRx(bits_hat=bits_hat, crc_ok=ok, llr=llr, state=state)

    def forward(self, bits, no, generator: torch.Generator) -> DigitalRx:
        return self.apply(bits, self.generate(bits.shape[0], generator), no, generator)
