"""Frequency-selective multipath channel models: an exponential power-delay profile and 3GPP TDL.

Both models return Sionna's channel-model layout so that Sionna's utilities
(:func:`sionna.phy.channel.cir_to_ofdm_channel`, ...) apply unchanged:

- path gains ``a``: ``[B, 1, 1, 1, 1, L, T]`` complex (single antenna, ``T`` time steps)
- delays ``tau``: ``[B, 1, 1, L]`` float [s]

The exponential PDP and a TDL at speed 0 are *static* (block fading: all ``T`` time steps equal).
A TDL with a speed ``v > 0`` is Sionna's sum-of-sinusoids Doppler process (maximum Doppler
``f_D = v f_c / c``): its taps vary over the ``T`` time steps, with the time autocorrelation
``E[h_l(t+τ) h_l*(t)] = p_l J0(2π f_D τ)`` (Jakes) of every non-LoS tap; :meth:`TDLProfile.sample`
evaluates one drawn process at arbitrary times (a message's transmission time).

Normalisation (DESIGN.md §3): ``E[Σ_l |h_l|²] = 1`` *on average* over draws, never per example
(Sionna's ``normalize_channel=True`` would normalise each example and turn fading into AWGN).

Randomness comes from the caller's ``torch.Generator``; Sionna's global RNG is never touched.
"""

from __future__ import annotations

import math

import torch
from sionna.phy import SPEED_OF_LIGHT
from sionna.phy.channel import ChannelModel, cir_to_ofdm_channel, subcarrier_frequencies
from sionna.phy.channel.tr38901 import TDL

__all__ = ["pdp", "ExpDecayPDP", "TDLProfile", "frequency_response", "frequency_response_series",
           "frequency_covariance",
           "doppler_hz", "coherence_time_s", "COHERENCE_FACTOR"]

#: ``T_c = COHERENCE_FACTOR / f_D`` with ``COHERENCE_FACTOR = sqrt(9/(16π)) ≈ 0.423``: the rule of
#: thumb of digital communications (Rappaport, *Wireless Communications*, eq. 5.40.c), the geometric
#: mean of ``1/f_D`` and of ``9/(16π f_D)`` (where the Jakes correlation ``J0(2π f_D τ)`` falls to 0.5)
COHERENCE_FACTOR = math.sqrt(9 / (16 * math.pi))


def doppler_hz(speed: float, carrier_frequency: float) -> float:
    """Maximum Doppler shift ``f_D = v f_c / c`` [Hz] of a receiver moving at ``speed`` [m/s].

    >>> round(doppler_hz(30.0, 3.5e9), 1)
    350.2
    """
    return float(speed) * float(carrier_frequency) / SPEED_OF_LIGHT


def coherence_time_s(speed: float, carrier_frequency: float) -> float | None:
    """Coherence time ``T_c = sqrt(9/(16π)) / f_D ≈ 0.423/f_D`` [s] (``None`` at speed 0: never changes).

    >>> round(coherence_time_s(30.0, 3.5e9) * 1e3, 3)
    1.208
    """
    fd = doppler_hz(speed, carrier_frequency)
    return COHERENCE_FACTOR / fd if fd > 0 else None

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
_COMPLEX = {"single": torch.complex64, "double": torch.complex128}


def pdp(paths: int, decay: float) -> torch.Tensor:
    """Exponential power-delay profile ``p_l ∝ exp(-l/decay)``, ``l = 0..paths-1``, ``Σ p_l = 1``.

    :param paths: number of taps ``L`` (>= 1)
    :param decay: decay constant in taps (> 0); large values approach a uniform profile
    :return: ``[L]`` float64 tap powers

    >>> round(pdp(3, 1.0).sum().item(), 12)
    1.0
    """
    if int(paths) < 1:
        raise ValueError(f"paths must be >= 1; got {paths}")
    if not decay > 0:
        raise ValueError(f"decay must be > 0; got {decay}")
    p = torch.exp(-torch.arange(int(paths), dtype=torch.float64) / float(decay))
    return p / p.sum()


class ExpDecayPDP(ChannelModel):
    """Rayleigh multipath with an exponential power-delay profile and sample-spaced taps.

    ``h_l ~ CN(0, p_l)`` independent (variance ``p_l/2`` per real component), ``p`` from
    :func:`pdp`; tap ``l`` has delay ``l / bandwidth`` (integer samples at the OFDM sampling rate
    ``bandwidth = fft_size * subcarrier_spacing``). Gains are constant over the ``T`` requested
    time steps (static within a frame).

    Sionna ships no custom-PDP model, hence this small :class:`~sionna.phy.channel.ChannelModel`.

    :param paths: ``L`` taps
    :param decay: ``p_l ∝ exp(-l/decay)``
    :param bandwidth: sampling rate [Hz] that sets the tap spacing ``1/bandwidth``
    :param precision: ``"single"`` | ``"double"`` (Sionna convention)
    :param device: torch device

    :input batch_size: ``B``
    :input num_time_steps: ``T`` (default 1)
    :input sampling_frequency: ignored (static channel); kept for the ChannelModel interface
    :input generator: ``torch.Generator`` for the draw (required: no global RNG)
    :output a: ``[B, 1, 1, 1, 1, L, T]`` complex path gains
    :output tau: ``[B, 1, 1, L]`` float delays [s]
    """

    def __init__(self, paths: int, decay: float, bandwidth: float, precision=None, device=None):
        super().__init__(precision=precision, device=device)
        self.paths = int(paths)
        self.decay = float(decay)
        self.bandwidth = float(bandwidth)
        self.powers = pdp(paths, decay).to(self.dtype).to(self.device)
        self.delays = torch.arange(self.paths, dtype=self.dtype, device=self.device) / self.bandwidth

    def __call__(self, batch_size: int, num_time_steps: int = 1, sampling_frequency: float | None = None,
                 generator: torch.Generator | None = None):
        if generator is None:
            raise ValueError("ExpDecayPDP draws need a torch.Generator (linksim never uses the global RNG)")
        z = torch.randn((batch_size, self.paths, 2), generator=generator, dtype=self.dtype,
                        device=generator.device).to(self.device)
        # CN(0, p_l): each real component has variance p_l / 2.
        h = torch.view_as_complex(z) * (self.powers / 2).sqrt()
        a = h.reshape(batch_size, 1, 1, 1, 1, self.paths, 1).expand(-1, -1, -1, -1, -1, -1, num_time_steps)
        tau = self.delays.reshape(1, 1, 1, self.paths).expand(batch_size, -1, -1, -1)
        return a, tau


class _SeededTDL(TDL):
    """Sionna's TDL drawing from a caller-supplied generator (Sionna's reads ``self.torch_rng``)."""

    _generator: torch.Generator | None = None

    @property
    def torch_rng(self) -> torch.Generator:
        if self._generator is None:
            raise ValueError("TDL draws need a torch.Generator (linksim never uses the global RNG)")
        return self._generator


class TDLProfile(ChannelModel):
    """3GPP TR 38.901 TDL-A..E (Sionna's :class:`~sionna.phy.channel.tr38901.TDL`), optionally moving.

    Sionna's TDL is a sum-of-sinusoids Doppler model. At ``speed`` 0 the channel is static: one
    time step evaluated and expanded, identical to evaluating every sample and about 4x cheaper.
    At ``speed > 0`` the ``T`` time steps ``t_k = k / sampling_frequency`` are Sionna's process
    itself (min = max speed, so every draw has the maximum Doppler ``f_D = v f_c / c``).
    The tabulated powers are normalised by Sionna to sum to one (LoS component included for D/E),
    so ``E[Σ|h_l|²] = 1`` holds in expectation, as linksim requires; no per-example scaling.

    :param model: ``"A"`` .. ``"E"``
    :param delay_spread: RMS delay spread [s]
    :param carrier_frequency: [Hz]; enters through the Doppler shift only
    :param speed: receiver speed [m/s] relative to the transmitter (0: static)
    :param precision: ``"single"`` | ``"double"`` (a moving model evaluates its process in double:
        phases ``2π f_D t`` of seconds of simulated time need it; the gains are cast afterwards)
    :param device: torch device

    :input batch_size, num_time_steps: as :class:`ExpDecayPDP`
    :input sampling_frequency: [Hz] of the time steps (needed when moving)
    :input generator: ``torch.Generator`` for the draw (``B`` independent processes)
    :output a: ``[B, 1, 1, 1, 1, L, T]``; ``tau``: ``[B, 1, 1, L]`` [s] (continuous delays)
    """

    def __init__(self, model: str, delay_spread: float, carrier_frequency: float = 3.5e9,
                 speed: float = 0.0, precision=None, device=None):
        super().__init__(precision=precision, device=device)
        if model not in ("A", "B", "C", "D", "E"):
            raise ValueError(f"tdl_model must be one of A..E; got {model!r}")
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0 [m/s]; got {speed}")
        self.model = model
        self.speed = float(speed)
        self.carrier_frequency = float(carrier_frequency)
        self._args = (model, delay_spread, carrier_frequency)
        self._tdl = self._model_on(self.device)
        self._by_device = {str(torch.device(self.device)): self._tdl}

    @property
    def time_varying(self) -> bool:
        """True when the taps change over time (``speed > 0``)."""
        return self.speed > 0

    @property
    def doppler_hz(self) -> float:
        """Maximum Doppler shift ``f_D = v f_c / c`` [Hz]."""
        return doppler_hz(self.speed, self.carrier_frequency)

    def _model_on(self, device) -> _SeededTDL:
        model, delay_spread, carrier_frequency = self._args
        precision = "double" if self.time_varying else self.precision
        return _SeededTDL(model, delay_spread, carrier_frequency, min_speed=self.speed, max_speed=self.speed,
                          precision=precision, device=str(device))

    @property
    def powers(self) -> torch.Tensor:
        """``[L]`` mean tap powers (sum 1, LoS power included in the first tap)."""
        return self._tdl.mean_powers

    @property
    def delays(self) -> torch.Tensor:
        """``[L]`` tap delays [s]."""
        return self._tdl.delays

    def _on(self, generator: torch.Generator) -> _SeededTDL:
        # Draw where the generator lives (a CPU generator may drive a CUDA link), then move.
        key = str(generator.device)
        if key not in self._by_device:
            self._by_device[key] = self._model_on(generator.device)
        return self._by_device[key]

    def _draw(self, generator, batch_size, num_time_steps, sampling_frequency):
        tdl = self._on(generator)
        tdl._generator = generator
        try:
            a, tau = tdl(batch_size, num_time_steps, sampling_frequency)
        finally:
            tdl._generator = None
        return a.to(self.device, self.cdtype), tau.to(self.device, self.dtype)

    def __call__(self, batch_size: int, num_time_steps: int = 1, sampling_frequency: float | None = None,
                 generator: torch.Generator | None = None):
        if generator is None:
            raise ValueError("TDL draws need a torch.Generator (linksim never uses the global RNG)")
        if not self.time_varying:
            a, tau = self._draw(generator, batch_size, 1, 1.0)
            return a.expand(-1, -1, -1, -1, -1, -1, num_time_steps), tau
        if sampling_frequency is None:
            raise ValueError("a moving TDL needs the sampling_frequency of its time steps [Hz]")
        return self._draw(generator, batch_size, num_time_steps, sampling_frequency)

    def sample(self, times: torch.Tensor, generators) -> tuple[torch.Tensor, torch.Tensor]:
        """Example ``b``: the process drawn with ``generators[b]``, evaluated at ``times[b]``.

        The same generator state gives the same process (Doppler, angles, phases), so two messages
        whose generators are seeded alike see one continuous channel at their own times,
        correlated as the process says (``J0(2π f_D Δt)``), neither identical nor independent.

        Sionna's TDL evaluates its sum of sinusoids at ``t_k = k / sampling_frequency`` from
        ``t = 0`` only and takes no time offset; it divides by ``sampling_frequency`` elementwise,
        so a ``[T + 1]`` tensor ``fs_k = k / t_k`` (``fs_0`` unused: ``t_0 = 0`` always) makes
        Sionna's own process give the samples at any times ``t_1..t_T``; step 0 is dropped.
        ``tests/phy/test_tdl_mobility.py`` pins this against Sionna's plain evaluation.

        :param times: ``[B, T]`` float [s], non-negative
        :param generators: ``B`` ``torch.Generator`` s (one process each)
        :return: ``a`` ``[B, 1, 1, 1, 1, L, T]``, ``tau`` ``[B, 1, 1, L]``
        """
        times = torch.as_tensor(times, dtype=torch.float64)
        if times.dim() != 2 or len(generators) != times.shape[0] or bool((times < 0).any()):
            raise ValueError(f"times must be [B, T] >= 0 [s] with one generator per row; got "
                             f"{tuple(times.shape)} and {len(generators)} generators")
        if not self.time_varying:
            out = [self(1, times.shape[1], None, generator=g) for g in generators]
        else:
            steps = torch.arange(1, times.shape[1] + 1, dtype=torch.float64)
            out = []
            for t, g in zip(times, generators):
                fs = torch.cat([torch.ones(1, dtype=torch.float64), steps / t]).to(g.device)  # t = 0: fs inf, k/fs 0
                a, tau = self._draw(g, 1, times.shape[1] + 1, fs)
                out.append((a[..., 1:], tau))
        return torch.cat([a for a, _ in out]), torch.cat([tau for _, tau in out])


def frequency_response(a: torch.Tensor, tau: torch.Tensor, num_subcarriers: int,
                       subcarrier_spacing: float) -> torch.Tensor:
    """Channel frequency response on the OFDM subcarriers (Sionna's ``cir_to_ofdm_channel``).

    ``H[k] = Σ_l a_l exp(-j 2π f_k τ_l)`` with ``f_k = (k - M/2) Δf`` (Sionna's centred subcarrier
    order, consistent with ``OFDMModulator``/``OFDMDemodulator``). Not normalised.

    :param a: ``[B, 1, 1, 1, 1, L, T]`` path gains
    :param tau: ``[B, 1, 1, L]`` delays [s]
    :return: ``[B, M]`` complex (first time step; the models here are static)
    """
    real = _REAL[a.dtype]
    freqs = subcarrier_frequencies(num_subcarriers, subcarrier_spacing,
                                   precision="double" if real == torch.float64 else "single",
                                   device=a.device)
    h = cir_to_ofdm_channel(freqs, a[..., :1], tau, normalize=False)
    return h.reshape(a.shape[0], num_subcarriers)


def frequency_response_series(a: torch.Tensor, tau: torch.Tensor, num_subcarriers: int,
                              subcarrier_spacing: float) -> torch.Tensor:
    """:func:`frequency_response` at every time step: ``[B, T, M]`` complex (``H_t[k]``)."""
    real = _REAL[a.dtype]
    freqs = subcarrier_frequencies(num_subcarriers, subcarrier_spacing,
                                   precision="double" if real == torch.float64 else "single",
                                   device=a.device)
    h = cir_to_ofdm_channel(freqs, a, tau, normalize=False)  # [B, 1, 1, 1, 1, T, M]
    return h.reshape(a.shape[0], a.shape[-1], num_subcarriers)


def frequency_covariance(powers: torch.Tensor, delays: torch.Tensor, num_subcarriers: int,
                         subcarrier_spacing: float, dtype=torch.complex128) -> torch.Tensor:
    """``R_f = E[H H^H]``, ``R[k, k'] = Σ_l p_l exp(-j 2π (f_k - f_k') τ_l)`` (``= F diag(p) F^H``).

    :param powers: ``[L]`` mean tap powers; :param delays: ``[L]`` delays [s]
    :return: ``[M, M]`` Hermitian, diagonal ``Σ p_l``
    """
    f = (torch.arange(num_subcarriers, dtype=torch.float64) - num_subcarriers // 2) * subcarrier_spacing
    phase = -2 * math.pi * f[:, None] * delays.to(torch.float64).cpu()[None, :]
    fmat = torch.polar(torch.ones_like(phase), phase)  # [M, L]
    r = (fmat * powers.to(torch.float64).cpu()[None, :]) @ fmat.conj().T
    return r.to(dtype)
