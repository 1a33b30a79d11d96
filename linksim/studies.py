"""Phy-only studies: the ``phy_ber`` method and its BER/BLER figure.

A :class:`Study` is a method that sends no images: at each sweep point it runs a Monte-Carlo
experiment on the physical layer and returns one results row. ``phy_ber`` is a thin adapter around
:class:`linksim.phy.chains.DigitalChain` and :func:`linksim.phy.ber.simulate_ber`::

    methods:
      - {name: qam16, kind: phy_ber, modulation: 16qam}                       # uncoded
      - {name: ldpc, kind: phy_ber, modulation: 16qam, coding: ldpc, k: 512, n: 1024}

The noise level comes from the ``ebno_db`` axis (``N0 = 1 / (10^(Eb/N0/10) · bps · k/n)``, no
OFDM overhead correction, :mod:`linksim.phy.conventions`) or from the ``csnr_db`` axis
(``N0 = 10^(-CSNR/10)``); both values are written to the row.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from pydantic import PositiveInt, model_validator

from linksim.configs import MethodConfig
from linksim.files import atomic_path
from linksim.phy.modulation import MODULATIONS

__all__ = ["Study", "StudyConfig", "PhyBerConfig", "PhyBerStudy", "PHY_COLUMNS", "plot_ber"]


#: Columns a phy study adds to its row (besides method, kind, channel, point, seed and the axes).
PHY_COLUMNS = [
    "csnr_db", "ebno_db", "modulation", "coding", "coderate", "ber", "bler", "bits", "bit_errors",
    "blocks", "block_errors", "stopped_early", "channel_uses", "overhead", "seconds",
]


class Study(ABC):
    """A phy-only method: one Monte-Carlo experiment per sweep point, one results row.

    What the engine and the reports know of it is declared, not found by ``issubclass``: its config
    model derives from :class:`StudyConfig` (``sends_images = False``: no images, no image metrics;
    the engine runs :meth:`run` once per point) and the class declares ``result_columns`` (the
    columns of its row; the reports draw the BER figure and table for methods that declare ``ber``).

    :param config: its validated config
    :param point: :class:`linksim.codecs.base.OperatingPoint`
    """

    #: the columns its row fills (besides method, kind, channel, point, seed and the sweep axes)
    result_columns: ClassVar[tuple[str, ...]] = tuple(PHY_COLUMNS)

    def __init__(self, config: Any, point: Any):
        self.config = config
        self.point = point

    @abstractmethod
    def run(self, generator, progress: Callable[[dict], None] | None = None) -> dict:
        """Run the experiment with ``generator``; return the row's fields."""


class StudyConfig(MethodConfig):
    """Base of a phy study's config model: it transmits no images (``sends_images = False``; the
    engine's dispatch reads this, :func:`linksim.configs.sends_images`)."""

    sends_images: ClassVar[bool] = False


class PhyBerConfig(StudyConfig):
    """``kind: phy_ber`` — BER/BLER of a digital chain.

    :param modulation: ``bpsk`` | ``qpsk`` | ``16qam`` | ``64qam`` | ``256qam`` (Gray, unit energy)
    :param coding: ``none`` | ``ldpc`` (5G NR LDPC with rate matching)
    :param k: LDPC information bits per codeword incl. CRC
    :param n: LDPC codeword length
    :param crc: CRC per codeword (``CRC24A``, ``CRC16``, ...) or ``None``
    :param codewords: codewords per example (one channel realization spans an example)
    :param block_bits: uncoded: bits per block (the BLER unit)
    :param batch_size: examples per Monte-Carlo batch
    :param max_bit_errors: stop after this many bit errors (``None``: no target)
    :param max_block_errors: stop after this many block errors (``None``: no target)
    :param max_blocks: stop after this many blocks (codewords) in any case
    :param num_iter: LDPC belief-propagation iterations
    :param demapping: ``app`` | ``maxlog``
    """

    kind: Literal["phy_ber"] = "phy_ber"
    modulation: Literal[tuple(MODULATIONS)] = "qpsk"
    coding: Literal["none", "ldpc"] = "none"
    k: PositiveInt | None = None
    n: PositiveInt | None = None
    crc: str | None = None
    codewords: PositiveInt = 1
    block_bits: PositiveInt = 1024
    batch_size: PositiveInt = 64
    max_bit_errors: PositiveInt | None = 200
    max_block_errors: PositiveInt | None = None
    max_blocks: PositiveInt = 20000
    num_iter: PositiveInt = 20
    demapping: Literal["app", "maxlog"] = "app"

    @model_validator(mode="after")
    def _code(self):
        if self.coding == "ldpc":
            if self.k is None or self.n is None:
                raise ValueError("coding: ldpc needs k and n (e.g. k: 512, n: 1024)")
            if not self.k < self.n:
                raise ValueError(f"LDPC needs k < n; got k={self.k}, n={self.n}")
        elif self.k is not None or self.n is not None:
            raise ValueError("k and n apply to coding: ldpc only")
        return self

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def num_symbols(self) -> int:
        """Channel uses of one example: the codewords' (or the uncoded block's) bits over the modulation."""
        bits = self.codewords * (self.n if self.coding == "ldpc" else self.block_bits)
        return -(-bits // self.bits_per_symbol)

    def check_point(self, point: Any) -> None:
        """An Eb/N0 or CSNR axis, and one example's symbols fit the channel's grid."""
        if point.csnr_db is None and point.ebno_db is None:
            raise ValueError("phy_ber needs an ebno_db or csnr_db sweep axis")
        point.grid_info(self.num_symbols)


class PhyBerStudy(Study):
    """``phy_ber``: Monte-Carlo BER/BLER of :class:`linksim.phy.chains.DigitalChain` at one point."""

    config: PhyBerConfig

    def num_symbols(self) -> int:
        return self.config.num_symbols

    def _chain(self):
        from linksim.phy.chains import DigitalChain

        c = self.config
        ldpc = c.coding == "ldpc"
        return DigitalChain(
            self.point.link, c.bits_per_symbol, c.k if ldpc else None, c.n if ldpc else None,
            num_codewords=c.codewords, crc=c.crc, device=self.point.device, num_iter=c.num_iter,
            block_bits=c.block_bits, demapping=c.demapping,
        )

    def run(self, generator, progress: Callable[[dict], None] | None = None) -> dict:
        from linksim.phy.ber import simulate_ber
        from linksim.phy.conventions import csnr_db_to_ebno_db, csnr_db_to_no, ebno_db_to_csnr_db

        c, p = self.config, self.point
        chain = self._chain()
        bps, rate = c.bits_per_symbol, chain.coderate
        if p.ebno_db is not None:
            ebno_db = p.ebno_db
            csnr_db = ebno_db_to_csnr_db(ebno_db, bps, rate)
        else:
            csnr_db = p.csnr_db
            ebno_db = csnr_db_to_ebno_db(csnr_db, bps, rate)
        no = csnr_db_to_no(csnr_db)

        def report(r):
            if progress is not None:
                progress({"blocks": r.blocks, "bit_errors": r.bit_errors, "block_errors": r.block_errors})

        res = simulate_ber(chain, no, generator, c.batch_size, c.max_bit_errors, c.max_block_errors,
                           c.max_blocks, progress=report)
        grid = chain.grid()
        return {
            "csnr_db": round(float(csnr_db), 10),
            "ebno_db": round(float(ebno_db), 10),
            "modulation": c.modulation,
            "coding": c.coding if c.coding == "none" else f"ldpc({chain.k},{chain.n})",
            "coderate": rate,
            "ber": res.ber,
            "bler": res.bler,
            "bits": res.bits,
            "bit_errors": res.bit_errors,
            "blocks": res.blocks,
            "block_errors": res.block_errors,
            "stopped_early": res.stopped_early,
            "channel_uses": grid.channel_uses,  # data symbols, as image rows; pilots + CP: overhead
            "overhead": grid.overhead,
        }


def _theory(channel: str, modulation: str, coding: str, ebno_db):
    """Closed-form BER where defined (uncoded AWGN M-QAM; uncoded flat Rayleigh), else ``None``."""
    from linksim.phy import theory

    if coding != "none":
        return None
    m = 2 ** MODULATIONS[modulation]
    if channel == "awgn":
        return theory.ber_mqam_awgn(ebno_db, m)
    if channel == "rayleigh":
        return theory.ber_bpsk_rayleigh(ebno_db) if m <= 4 else theory.ber_mqam_rayleigh(ebno_db, m)
    return None


def plot_ber(run_dir: str | Path, kinds: tuple[str, ...] | list[str] = ("phy_ber",)) -> list[Path]:
    """BER (and BLER) vs Eb/N0 [dB] of the rows of method ``kinds`` (those that declare a ``ber``
    result column) in ``results.csv``; PNG + PDF in ``figures/``.

    One line per method × channel (label, e.g. ``ofdm/ls``): markers for simulation (points with no
    error are not drawn on the log axis), dashed closed-form curves where defined (uncoded AWGN
    M-QAM, uncoded flat Rayleigh).

    :output: paths of the written files
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    run_dir = Path(run_dir)
    df = pd.read_csv(run_dir / "results.csv")
    df = df[df["kind"].isin(list(kinds))] if "kind" in df else df
    if df.empty:
        return []
    x = "ebno_db"
    coded = "coding" in df and bool((df["coding"].fillna("none") != "none").any())
    fig, axes = plt.subplots(1, 2 if coded else 1, figsize=(11 if coded else 6.5, 4.5), squeeze=False)
    drawn_theory = set()
    for (method, channel), g in df.groupby(["method", "channel"], sort=False):
        g = g.sort_values(x)
        for ax, col in zip(axes[0], ("ber", "bler")):
            y = g[col].to_numpy(dtype=float)
            ok = y > 0
            (line,) = ax.semilogy(g[x].to_numpy()[ok], y[ok], marker="o", ms=4, label=f"{method} / {channel}")
            if col != "ber":
                continue
            mod = g["modulation"].iloc[0] if "modulation" in g else None
            cod = g["coding"].iloc[0] if "coding" in g else None
            key = (channel, mod, cod)
            xs = np.linspace(g[x].min(), g[x].max(), 200)
            th = _theory(channel.split("/")[0], mod, cod, xs)
            if th is not None and key not in drawn_theory:
                drawn_theory.add(key)
                ax.semilogy(xs, th, "--", color=line.get_color(), lw=1, label=f"theory {mod} / {channel}")
    for ax, col in zip(axes[0], ("BER", "BLER")):
        ax.set_xlabel("Eb/N0 [dB]")
        ax.set_ylabel(col)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        lo = df[col.lower()][df[col.lower()] > 0].min()
        if not math.isnan(lo):
            ax.set_ylim(bottom=max(lo / 3, 1e-7), top=1)
    what = "simulation (markers) and theory (dashed)" if drawn_theory else "simulation"
    fig.suptitle(f"{_run_name(run_dir)}: {what}")
    fig.tight_layout()
    out_dir = run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "ber.png", out_dir / "ber.pdf"]
    for p in paths:
        with atomic_path(p) as tmp:  # a kill mid-write leaves the old figure, never half of one
            fig.savefig(tmp, dpi=130)
    plt.close(fig)
    return paths


def _run_name(run_dir: Path) -> str:
    """The scenario's ``name`` from ``run.json`` (the folder name if that is missing)."""
    import json

    try:
        return json.loads((run_dir / "run.json").read_text())["name"]
    except (OSError, ValueError, KeyError):
        return run_dir.name
