"""Frequency-selective multipath channel models: an exponential power-delay profile and 3GPP TDL.

Both models are *static over an OFDM frame* (block fading): one set of tap gains per example,
returned in Sionna's channel-model layout so that Sionna's utilities
(:func:`sionna.phy.channel.cir_to_ofdm_channel`, ...) apply unchanged:

- path gains ``a``: ``[B, 1, 1, 1, 1, L, T]`` complex (single antenna, ``T`` time steps, all equal)
- delays ``tau``: ``[B, 1, 1, L]`` float [s]

Normalisation (DESIGN.md §3): ``E[Σ_l |h_l|²] = 1`` *on average* over draws, never per example
(Sionna's ``normalize_channel=True`` would normalise each example and turn fading into AWGN).

Randomness comes from the caller's ``torch.Generator``; Sionna's global RNG is never touched.
"""

from __future__ import annotations

import math

import torch
from sionna.phy.channel import ChannelModel, cir_to_ofdm_channel, subcarrier_frequencies
from sionna.phy.channel.tr38901 import TDL

__all__ = ["pdp", "ExpDecayPDP", "TDLProfile", "frequency_response", "frequency_covariance"]

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
    """3GPP TR 38.901 TDL-A..E (Sionna's :class:`~sionna.phy.channel.tr38901.TDL`), static per draw.

    Sionna's TDL is a sum-of-sinusoids Doppler model; a static channel (speed 0) evaluated at one
    time step and expanded is identical to evaluating it at every sample and about 4x cheaper.
    The tabulated powers are normalised by Sionna to sum to one (LoS component included for D/E),
    so ``E[Σ|h_l|²] = 1`` holds in expectation, as linksim requires; no per-example scaling.

    :param model: ``"A"`` .. ``"E"``
    :param delay_spread: RMS delay spread [s]
    :param carrier_frequency: [Hz]; only enters through the Doppler shift, which is zero here
    :param precision: ``"single"`` | ``"double"``
    :param device: torch device

    :input batch_size, num_time_steps, sampling_frequency: as :class:`ExpDecayPDP`
    :input generator: ``torch.Generator`` for the draw
    :output a: ``[B, 1, 1, 1, 1, L, T]``; ``tau``: ``[B, 1, 1, L]`` [s] (continuous delays)
    """

    def __init__(self, model: str, delay_spread: float, carrier_frequency: float = 3.5e9,
                 precision=None, device=None):
        super().__init__(precision=precision, device=device)
        if model not in ("A", "B", "C", "D", "E"):
            raise ValueError(f"tdl_model must be one of A..E; got {model!r}")
        self.model = model
        self._args = (model, delay_spread, carrier_frequency)
        self._tdl = self._model_on(self.device)
        self._by_device = {str(torch.device(self.device)): self._tdl}

    def _model_on(self, device) -> _SeededTDL:
        model, delay_spread, carrier_frequency = self._args
        return _SeededTDL(model, delay_spread, carrier_frequency, min_speed=0.0, max_speed=0.0,
                          precision=self.precision, device=str(device))

    @property
    def powers(self) -> torch.Tensor:
        """``[L]`` mean tap powers (sum 1, LoS power included in the first tap)."""
        return self._tdl.mean_powers

    @property
    def delays(self) -> torch.Tensor:
        """``[L]`` tap delays [s]."""
        return self._tdl.delays

    def __call__(self, batch_size: int, num_time_steps: int = 1, sampling_frequency: float | None = None,
                 generator: torch.Generator | None = None):
        if generator is None:
            raise ValueError("TDL draws need a torch.Generator (linksim never uses the global RNG)")
        # Draw where the generator lives (a CPU generator may drive a CUDA link), then move.
        key = str(generator.device)
        if key not in self._by_device:
            self._by_device[key] = self._model_on(generator.device)
        tdl = self._by_device[key]
        tdl._generator = generator
        try:
            a, tau = tdl(batch_size, 1, 1.0)
        finally:
            tdl._generator = None
        a, tau = a.to(self.device), tau.to(self.device)
        return a.expand(-1, -1, -1, -1, -1, -1, num_time_steps), tau


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
