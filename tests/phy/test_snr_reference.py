"""``snr_reference``: average (linksim's CSNR per data RE) vs instantaneous (the DiffCom reference:
N0 from each realisation's measured received power, pilots and CP included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linksim.phy.chains import AnalogChain
from linksim.phy.links import LinkConfig
from linksim.phy.ofdm import OFDMLink


def _numpy_received_power(xg: np.ndarray, a: np.ndarray, cp: int) -> np.ndarray:
    """Noise-free received waveform power per example, written independently: centred
    subcarriers -> unitary IFFT -> CP -> frames back to back from silence -> linear convolution."""
    b, f, s, m = xg.shape
    t = np.fft.ifft(np.fft.ifftshift(xg, axes=-1), axis=-1, norm="ortho")
    t = np.concatenate([t[..., m - cp:], t], axis=-1).reshape(b, f, s * (m + cp))
    p = np.zeros(b)
    for i in range(b):
        for j in range(f):
            y = np.convolve(t[i, j], a[i])[: s * (m + cp)]
            p[i] += np.mean(np.abs(y) ** 2) / f
    return p


def test_instantaneous_noise_from_measured_received_power_ofdm():
    cfg = LinkConfig(kind="ofdm", paths=4, cp=4, data_symbols=4, estimator="ls", snr_reference="instantaneous")
    link = OFDMLink(cfg, 512, domain="time", precision="double")
    g = torch.Generator().manual_seed(0)
    real = link.generate(3, g)
    x = torch.randn(3, 512, dtype=torch.complex128, generator=g)
    x = x / x.abs().square().mean(-1, keepdim=True).sqrt()
    out = link.transmit(x, real, 0.1, g)
    p = _numpy_received_power(link.map(x).numpy(), real.taps.numpy(), 4)
    np.testing.assert_allclose(out.no.numpy(), 0.1 * p, rtol=1e-9)
    assert np.ptp(p) > 0.1  # fading: the realisations really differ
    # the frequency-domain link (circular model) measures the same power within 2 %
    fl = OFDMLink(cfg, 512, precision="double")
    np.testing.assert_allclose(fl.transmit(x, real, 0.1, g).no.numpy(), 0.1 * p, rtol=0.02)
    # average: N0 as requested
    avg = OFDMLink(LinkConfig(kind="ofdm", paths=4, cp=4, data_symbols=4, estimator="ls"), 512, precision="double")
    np.testing.assert_allclose(avg.transmit(x, real, 0.1, g).no.numpy(), 0.1)


@pytest.mark.parametrize("ref", ["average", "instantaneous"])
def test_rayleigh_measured_snr_per_example(ref):
    """Flat Rayleigh, one gain per example: with instantaneous the measured SNR of *each* example
    (|h x|² over the noise actually added) is the nominal 10 dB; with average it follows |h|²."""
    chain = AnalogChain(LinkConfig(kind="rayleigh", snr_reference=ref, interleave=False), 20000)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 20000, dtype=torch.complex64, generator=g)
    _, st = chain(x, 0.1, g)
    hx = st.realization.h * x / x.abs().square().mean(-1, keepdim=True).sqrt()
    noise = st.output.y - hx
    snr = hx.abs().square().mean(-1) / noise.abs().square().mean(-1)
    h2 = st.realization.h[:, 0].abs().square()
    if ref == "instantaneous":
        np.testing.assert_allclose(snr.numpy(), 10.0, rtol=0.05)
    else:
        np.testing.assert_allclose(snr.numpy(), 10.0 * h2.numpy(), rtol=0.05)
