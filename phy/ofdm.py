"""Single-antenna CP-OFDM link over frequency-selective multipath: :class:`OFDMLink`.

Frame layout (one Sionna :class:`~sionna.phy.ofdm.ResourceGrid` per frame): ``M`` subcarriers,
``S = data_symbols + pilot_symbols`` OFDM symbols, cyclic prefix ``cp`` samples per OFDM symbol,
no guard carriers and no DC null, so every RE of a data OFDM symbol carries data. Pilot OFDM
symbols carry unit-energy QPSK pilots on all subcarriers (drawn once from ``pilot_seed``; the
receiver knows them). ``N`` data symbols per example fill ``F = N / (M · data_symbols)`` frames.

**Fading.** One channel draw per example (image), shared by its ``F`` frames and all OFDM
symbols (block fading per example, static within a frame) for the exponential PDP and a TDL at
speed 0. A TDL with ``speed > 0`` is a Doppler process sampled once per OFDM symbol (at its start,
``T_s = (M + cp) / (M Δf)`` apart, frames back to back; the channel is taken as constant within an
OFDM symbol, i.e. inter-carrier interference is neglected: its power is about ``(π f_D T_s)² / 3``,
-31 dB at 30 m/s, 3.5 GHz, 15 kHz): the ``F · S`` symbols of a message see the channel change, and
the estimator, which sees it only at the pilot symbols, lags behind it. Its samples start at the
message's transmission time (:class:`~linksim.phy.links.TransmitTimes`, set by the engine) on a
process shared by the messages of one channel draw; without one every example is its own process
from ``t = 0``. Each frame is estimated from its own pilots.

**Power and noise** (DESIGN.md §3). Data and pilot REs have unit energy; the DFT is unitary
(Sionna's ``OFDMModulator``/``OFDMDemodulator`` use the normalised (I)FFT), so a time-domain
sample has unit average power too and ``CN(0, N0)`` noise per time sample is ``CN(0, N0)`` per
RE. With ``E[Σ|h_l|²] = 1`` the average received SNR per data RE is ``1/N0`` (measured in the
tests).

**Time or frequency domain.** With a cyclic prefix at least as long as the channel memory,
CP-OFDM turns the linear convolution into a circular one, and ``y[s, k] = H[k] x[s, k] + n[s, k]``
per RE holds *exactly*. ``domain="freq"`` (default) uses that identity: it is exact and
fast. ``domain="time"`` (``kind="ofdm"`` only: integer-sample taps) runs the waveform: Sionna
``OFDMModulator`` -> linear convolution with the taps -> ``CN(0, N0)`` per sample -> Sionna
``OFDMDemodulator``; the tests check that both domains agree. Amplitude clipping
(``cfg.clip_ratio``) always acts on the time-domain waveform, CP included, in either domain:
clipping is memoryless, so the clipped CP is still a copy of the clipped symbol tail and the
circular model stays exact after it. The constructor refuses a CP shorter than the channel
(``paths - 1 > cp``, or a TDL whose largest delay exceeds ``cp`` samples).

**Estimation / equalisation**: :mod:`linksim.phy.estimation` (perfect, LS, frequency LMMSE with
the known PDP covariance) and :mod:`linksim.phy.equalization` (one-tap ZF / unbiased LMMSE).

Layouts: ``x`` ``[B, N]``; grids ``[B, F, S, M]`` (frames, OFDM symbols, subcarriers in Sionna's
centred order). :class:`~linksim.phy.links.ChannelRealization`: ``h`` ``[B, F, S, M]`` true
frequency response; ``taps`` ``[B, L]`` complex tap gains, ``delays`` ``[L]``
delays [s]. ``LinkOutput.weights`` ``[B, F, S, M]`` equaliser taps; ``LinkOutput.y`` the
received grid ``[B, F, S, M]`` (pilots included).
"""

from __future__ import annotations

import math

import torch
from sionna.phy.ofdm import OFDMDemodulator, OFDMModulator, PilotPattern, ResourceGrid, ResourceGridMapper

from .channels import complex_normal
from .equalization import equalize
from .grid import ofdm_grid
from .estimation import build_estimator
from .impairments import clip_amplitude
from .links import (ChannelRealization, GridInfo, Link, LinkConfig, LinkOutput, TransmitTimes,
                    current_transmit_times, instantaneous_noise)
from .multipath import ExpDecayPDP, TDLProfile, frequency_covariance, frequency_response, frequency_response_series
from .validation import check_one_of

__all__ = ["OFDMLink", "pilot_symbol_indices", "qpsk_pilots"]

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def pilot_symbol_indices(num_ofdm_symbols: int, num_pilot_symbols: int) -> list[int]:
    """Pilot OFDM symbols spread evenly over the frame, e.g. one pilot in 17 symbols -> ``[8]``
    (none for a pilot-free frame)."""
    if num_pilot_symbols == 0:
        return []
    if not 0 < num_pilot_symbols < num_ofdm_symbols:
        raise ValueError(f"need 0 < pilot_symbols < OFDM symbols per frame; got {num_pilot_symbols} "
                         f"of {num_ofdm_symbols}")
    step = num_ofdm_symbols / num_pilot_symbols
    return [int((i + 0.5) * step) for i in range(num_pilot_symbols)]


def qpsk_pilots(num: int, seed: int) -> torch.Tensor:
    """``num`` unit-energy QPSK symbols ``(±1 ± j)/√2`` from a seeded generator, complex64."""
    g = torch.Generator().manual_seed(int(seed))
    bits = torch.randint(0, 2, (num, 2), generator=g).to(torch.float32)
    return torch.complex(1 - 2 * bits[:, 0], 1 - 2 * bits[:, 1]) / math.sqrt(2)


class OFDMLink(Link):
    """CP-OFDM link: map -> (clip) -> multipath -> AWGN -> estimate -> equalise (see module doc).

    :param cfg: ``kind`` ``"ofdm"`` (exponential PDP: ``paths``, ``decay``) or ``"tdl"``
        (``tdl_model``, ``delay_spread``); grid: ``subcarriers``, ``data_symbols``,
        ``pilot_symbols``, ``cp``, ``subcarrier_spacing``; ``estimator``, ``equalizer``,
        ``clip_ratio``
    :param num_symbols: ``N`` data symbols per example (must fill whole frames)
    :param device: torch device (Sionna blocks are built on it)
    :param precision: ``"single"`` (complex64) | ``"double"`` (complex128)
    :param domain: ``"freq"`` (exact per-RE model) | ``"time"`` (waveform, ``kind="ofdm"`` only)
    :param interpolation: channel-estimate interpolation over OFDM symbols, ``"nn"`` | ``"lin"``
    :param carrier_frequency: [Hz], TDL only (enters via Doppler); ``None``: ``cfg.carrier_frequency``
    :param pilot_seed: seed of the fixed pilot sequence

    >>> link = OFDMLink(LinkConfig(kind="ofdm"), 1024)
    >>> link.grid().subcarriers, link.grid().num_frames, link.grid().pilot_res
    (64, 1, 64)
    """

    kinds = ("ofdm", "tdl")

    def __init__(self, cfg: LinkConfig, num_symbols: int, device="cpu", precision: str = "single",
                 domain: str = "freq", interpolation: str = "nn", carrier_frequency: float | None = None,
                 pilot_seed: int = 0):
        super().__init__(cfg, num_symbols, device)
        check_one_of("precision", precision, ("single", "double"))
        check_one_of("domain", domain, ("freq", "time"))
        if domain == "time" and cfg.kind != "ofdm":
            raise ValueError("domain='time' needs integer-sample taps (kind='ofdm'); TDL runs in 'freq'")
        self.precision = precision
        self.domain = domain
        self.cdtype = torch.complex64 if precision == "single" else torch.complex128
        self._info = self.grid_info(cfg, num_symbols)
        info = self._info
        m, d, p = info.subcarriers, info.data_symbols, info.pilot_symbols
        self.num_frames, self.num_subcarriers, self.num_ofdm_symbols = info.num_frames, m, d + p
        s = self.num_ofdm_symbols
        dev = str(self.device)

        # Resource grid with a custom pilot pattern: Sionna's KroneckerPilotPattern draws its
        # QPSK pilots from Sionna's global RNG; here they come from pilot_seed.
        self.pilot_indices = pilot_symbol_indices(s, p)
        mask = torch.zeros(1, 1, s, m, dtype=torch.bool)
        mask[..., self.pilot_indices, :] = True
        pilots = qpsk_pilots(p * m, pilot_seed).reshape(1, 1, p * m)
        pattern = PilotPattern(mask, pilots, precision=precision, device=dev)
        self.resource_grid = ResourceGrid(s, m, cfg.subcarrier_spacing, cyclic_prefix_length=cfg.cp,
                                          pilot_pattern=pattern, precision=precision, device=dev)
        self.mapper = ResourceGridMapper(self.resource_grid, precision=precision, device=dev)
        self.modulator = OFDMModulator(cfg.cp, precision=precision, device=dev)
        self.demodulator = OFDMDemodulator(m, 0, cfg.cp, precision=precision, device=dev)
        data_ind = torch.nonzero(~mask.reshape(-1)).squeeze(-1)
        self.register_buffer("data_ind", data_ind.to(self.device), persistent=False)

        bandwidth = m * cfg.subcarrier_spacing
        #: OFDM symbol duration with its cyclic prefix [s] (the time step of a moving channel)
        self.symbol_duration = (m + cfg.cp) / bandwidth
        if cfg.kind == "ofdm":
            if cfg.paths - 1 > cfg.cp:
                raise ValueError(f"the channel has {cfg.paths} taps but the cyclic prefix only {cfg.cp} "
                                 f"samples; need paths - 1 <= cp")
            self.channel_model = ExpDecayPDP(cfg.paths, cfg.decay, bandwidth, precision=precision, device=dev)
        else:
            fc = cfg.carrier_frequency if carrier_frequency is None else carrier_frequency
            self.channel_model = TDLProfile(cfg.tdl_model, cfg.delay_spread, fc, speed=cfg.speed,
                                            precision=precision, device=dev)
            max_delay = float(self.channel_model.delays.max()) * bandwidth
            if max_delay > cfg.cp:
                raise ValueError(f"TDL-{cfg.tdl_model} with delay spread {cfg.delay_spread:g} s reaches "
                                 f"{max_delay:.1f} samples, longer than the cyclic prefix ({cfg.cp})")
        cov = frequency_covariance(self.channel_model.powers, self.channel_model.delays, m,
                                   cfg.subcarrier_spacing)
        self.register_buffer("cov_freq", cov.to(self.device), persistent=False)
        # A pilot-free frame (pilot_symbols 0) gives an estimator nothing to work on: such a link
        # delivers no channel estimate and no equalisation (only blind receivers can use it),
        # unless the receiver has genie CSI (estimator "perfect").
        self.has_estimate = p > 0 or cfg.estimator == "perfect"
        self.estimator = build_estimator(cfg.estimator, self.resource_grid, cov, interpolation,
                                         precision=precision, device=dev) if p > 0 else None

    # ---------------------------------------------------------------- grid arithmetic
    #: the OFDM layout (:func:`linksim.phy.grid.ofdm_grid`; torch-free, the validator uses it too)
    grid_info = staticmethod(ofdm_grid)
    grid_for = grid_info

    def grid(self) -> GridInfo:
        return self._info

    # ---------------------------------------------------------------- channel draw
    @property
    def time_varying(self) -> bool:
        """True when the channel changes over the OFDM symbols (a TDL with ``speed > 0``)."""
        return bool(getattr(self.channel_model, "time_varying", False))

    def generate(self, batch_size: int, generator: torch.Generator, times: TransmitTimes | None = None
                 ) -> ChannelRealization:
        """One multipath draw per example: ``h`` ``[B, F, S, M]``.

        Static channels: constant over ``F`` and ``S``. Time-varying (TDL with speed): OFDM symbol
        ``(f, s)`` of example ``b`` sees the taps at ``t_b + (f·S + s)·T_s``; with ``times`` (default:
        :func:`~linksim.phy.links.current_transmit_times`) ``t_b = times.start_s[b]`` on the process
        seeded by ``times.process_seeds[b]``, else ``t_b = 0`` on ``B`` processes drawn from ``generator``.
        """
        if not self.time_varying:
            a, tau = self.channel_model(batch_size, 1, None, generator=generator)
            hf = frequency_response(a, tau, self.num_subcarriers, self.cfg.subcarrier_spacing)
            h = hf[:, None, None, :].expand(-1, self.num_frames, self.num_ofdm_symbols, -1).contiguous()
            return ChannelRealization(h=h.to(self.cdtype), taps=a[:, 0, 0, 0, 0, :, 0].to(self.cdtype),
                                      delays=tau[0, 0, 0].clone())
        times = times if times is not None else current_transmit_times()
        f, s, m = self.num_frames, self.num_ofdm_symbols, self.num_subcarriers
        steps = torch.arange(f * s, dtype=torch.float64) * self.symbol_duration
        if times is None:
            a, tau = self.channel_model(batch_size, f * s, 1 / self.symbol_duration, generator=generator)
            t = steps.expand(batch_size, -1)
        else:
            times.check(batch_size)
            t = torch.tensor(times.start_s, dtype=torch.float64)[:, None] + steps
            gens = [torch.Generator(device=generator.device).manual_seed(int(seed)) for seed in times.process_seeds]
            a, tau = self.channel_model.sample(t, gens)
        hf = frequency_response_series(a, tau, m, self.cfg.subcarrier_spacing)  # [B, T, M]
        return ChannelRealization(h=hf.reshape(batch_size, f, s, m).to(self.cdtype),
                                  taps=a[:, 0, 0, 0, 0, :, 0].to(self.cdtype), delays=tau[0, 0, 0].clone(),
                                  times=t.to(self.device))

    # ---------------------------------------------------------------- building blocks
    def map(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` data -> ``[B, F, S, M]`` resource grids with pilots (Sionna mapper)."""
        b = x.shape[0]
        if x.shape[1:] != (self.num_symbols,):
            raise ValueError(f"x must be [B, {self.num_symbols}]; got {tuple(x.shape)}")
        xg = self.mapper(x.to(self.cdtype).reshape(b * self.num_frames, 1, 1, -1))
        return xg.reshape(b, self.num_frames, self.num_ofdm_symbols, self.num_subcarriers)

    def extract(self, grid: torch.Tensor) -> torch.Tensor:
        """``[B, F, S, M]`` -> ``[B, N]`` data REs (inverse of :meth:`map` on data positions)."""
        b = grid.shape[0]
        return grid.reshape(b, self.num_frames, -1)[..., self.data_ind].reshape(b, self.num_symbols)

    def waveform(self, xg: torch.Tensor) -> torch.Tensor:
        """``[B, F, S, M]`` -> ``[B, F, S·(M+cp)]`` time-domain frames with CP, clipped if configured.

        The clipping RMS is taken per example over all its frames (the transmitter's average
        power), see :func:`linksim.phy.impairments.clip_amplitude`.
        """
        xt = self.modulator(xg)
        return clip_amplitude(xt, self.cfg.clip_ratio, dim=(1, 2))

    def _tx_grid(self, x: torch.Tensor) -> torch.Tensor:
        xg = self.map(x)
        if self.cfg.clip_ratio is None:
            return xg
        # Clipped waveform back to REs: exact, since clipping keeps the CP a copy of the tail.
        return self.demodulator(self.waveform(xg))

    def _convolve(self, xt: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Linear convolution of each frame with static integer-delay taps ``a`` ``[B, L]``.

        A sum of ``L`` shifted copies (``L <= cp + 1`` is small): Sionna's ``ApplyTimeChannel``
        expects a time-varying ``[.., T + L - 1, L]`` tap tensor, wasteful for a static channel.
        Each frame starts from silence; the tail into the next frame would fall into its CP.
        """
        y = xt * a[:, 0, None, None]
        for lag in range(1, a.shape[1]):
            y = y + torch.nn.functional.pad(xt[..., :-lag], (lag, 0)) * a[:, lag, None, None]
        return y

    def _noise_batch(self, no, batch_size: int) -> torch.Tensor:
        """``no`` (float, 0-d or ``[B]``) -> ``[B]`` real tensor in the link's precision."""
        no = torch.as_tensor(no, dtype=_REAL[self.cdtype], device=self.device)
        if no.dim() == 0:
            no = no.expand(batch_size)
        if no.shape != (batch_size,) or bool((no < 0).any()):
            raise ValueError(f"no must be a non-negative float or [B={batch_size}] tensor; got {tuple(no.shape)}")
        return no

    # ---------------------------------------------------------------- link API
    def transmit(self, x: torch.Tensor, realization: ChannelRealization, no, generator: torch.Generator
                 ) -> LinkOutput:
        """Send ``x`` ``[B, N]``; noise ``CN(0, N0)`` per RE (freq) or per sample (time)."""
        b = x.shape[0]
        h = realization.h
        no = self._noise_batch(no, b)
        xg = self.map(x)
        if self.domain == "time":
            xt = self.waveform(xg)
            yt = self._convolve(xt, realization.taps.to(self.cdtype))
            no = instantaneous_noise(no, yt, self.cfg.snr_reference)
            n = complex_normal(yt.shape, generator, self.cdtype, self.device)
            yg = self.demodulator(yt + n * no.sqrt()[:, None, None])
        else:
            if self.cfg.clip_ratio is not None:
                xg = self.demodulator(self.waveform(xg))
            if self.cfg.snr_reference != "average":
                # the received waveform with CP (circular model, exact for CP >= channel memory)
                no = instantaneous_noise(no, self.modulator(h * xg), self.cfg.snr_reference)
            n = complex_normal(xg.shape, generator, self.cdtype, self.device)
            yg = h * xg + n * no.sqrt()[:, None, None, None]

        if not self.has_estimate:
            # pilot-free: no estimate, no equaliser; y_eq is the raw data REs (blind receivers only)
            ones = torch.ones_like(yg)
            return LinkOutput(y_eq=self.extract(yg), no_eff=no[:, None].expand(b, self.num_symbols).clone(),
                              h_hat=None, err_var=None, weights=ones, y=yg, no=no)
        if self.estimator is None:
            h_hat, err_var = h, None
        else:
            f, s, m = self.num_frames, self.num_ofdm_symbols, self.num_subcarriers
            # Estimation never needs a gradient w.r.t. the data (pilots are known): detach.
            h_hat, err_var = self.estimator(yg.detach().reshape(b * f, 1, 1, s, m), no.repeat_interleave(f))
            h_hat = h_hat.reshape(b, f, s, m).to(self.cdtype)
            err_var = err_var.reshape(b, f, s, m).to(_REAL[self.cdtype])
        y_eq, no_eff, w = equalize(yg, h_hat, no[:, None, None, None], err_var, self.cfg.equalizer)
        return LinkOutput(y_eq=self.extract(y_eq), no_eff=self.extract(no_eff), h_hat=h_hat,
                          err_var=err_var, weights=w, y=yg, no=no)

    def noise_free(self, x: torch.Tensor, realization: ChannelRealization, out: LinkOutput,
                   use_true_channel: bool = False) -> torch.Tensor:
        """``A(x) = extract(w ⊙ H ⊙ grid(x))`` with the stored ``w``; differentiable.

        Always the per-RE (frequency-domain) model, which the time-domain waveform equals
        exactly (CP >= channel memory); clipping is re-applied to ``x`` when configured.
        """
        h = realization.h if use_true_channel else out.h_hat
        if h is None:
            raise ValueError("this OFDM link has no channel estimate (pilot_symbols 0)")
        return self.extract(out.weights * h * self._tx_grid(x))

    def received_data(self, out: LinkOutput) -> torch.Tensor:
        """The data REs of the received grid ``out.y`` (pilot REs dropped), ``[B, N]`` on-air order."""
        return self.extract(out.y)

    def data_channel(self, realization, out, use_true_channel=False) -> torch.Tensor:
        """``Ĥ`` (or the true ``H``) on the data REs, ``[B, N]``."""
        h = realization.h if use_true_channel else out.h_hat
        if h is None:
            raise ValueError("this OFDM link has no channel estimate (pilot_symbols 0)")
        return self.extract(h)

    def data_err_var(self, out: LinkOutput) -> torch.Tensor | None:
        return None if out.err_var is None else self.extract(out.err_var)

    def tx_data(self, x: torch.Tensor) -> torch.Tensor:
        """The data REs of the transmitted grid (clipping included), ``[B, N]``; pilots never enter."""
        if self.cfg.clip_ratio is None:
            return x.to(self.cdtype)
        return self.extract(self._tx_grid(x))
