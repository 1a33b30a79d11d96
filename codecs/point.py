"""Where a method operates (:class:`OperatingPoint`): the sweep point as a method sees it; and
:func:`parse_cbr`, the one reading of a CBR (scenario keys, model configs, trainings).

Torch-free: the scenario validator builds one per method and point and runs the methods' static
checks on it (``linksim validate`` imports no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

__all__ = ["OperatingPoint", "parse_cbr"]


def parse_cbr(value: Any) -> Fraction:
    """A CBR given as a number or an ``"a/b"`` string -> a positive :class:`~fractions.Fraction`.

    >>> parse_cbr("1/24"), parse_cbr(0.125)
    (Fraction(1, 24), Fraction(1, 8))
    """
    if isinstance(value, bool):
        raise ValueError(f"a number or an 'a/b' string, got {value!r}")
    if isinstance(value, Fraction):
        frac = value
    elif isinstance(value, float):
        frac = Fraction(value).limit_denominator(1 << 20)
    elif isinstance(value, (int, str)):
        try:
            frac = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"a number or an 'a/b' string, got {value!r}") from None
    else:
        raise ValueError(f"a number or an 'a/b' string, got {value!r}")
    if frac <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return frac


@dataclass(frozen=True)
class OperatingPoint:
    """Where a method operates: one sweep point, as seen by the method.

    :param csnr_db: CSNR [dB] per complex data symbol (DESIGN.md §3), or ``None`` when the sweep
        gives Eb/N0 instead (digital studies)
    :param cbr: channel bandwidth ratio ``ρ = N / (3·H·W)`` (exact fraction) or ``None``
    :param link: the :class:`linksim.phy.links.LinkConfig` of this point
    :param image_shape: ``(H, W)`` of the images, or ``None`` for phy-only studies
    :param device: torch device string
    :param seed: the point's seed (already derived from the scenario seed and the point key)
    :param ebno_db: Eb/N0 [dB] when swept, else ``None``
    :param layout: ``num_symbols -> GridInfo`` of the point's channel (the engine passes the channel
        section's torch-free :meth:`linksim.channels.ChannelConfig.grid_info`); ``None``: the link
        class of ``link`` decides (:func:`linksim.phy.chains.grid_info`)
    """

    csnr_db: float | None
    cbr: Fraction | None
    link: Any
    image_shape: tuple[int, int] | None = None
    device: str = "cpu"
    seed: int = 0
    ebno_db: float | None = None
    layout: Callable[[int], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def no(self) -> float:
        """Linear noise variance ``N0 = 10^(-CSNR/10)``."""
        if self.csnr_db is None:
            raise ValueError("this operating point has no csnr_db")
        return 10.0 ** (-self.csnr_db / 10.0)

    @property
    def num_symbols(self) -> int:
        """``N = ρ·3·H·W`` complex data symbols per image (exact; ``ValueError`` if not an integer)."""
        if self.cbr is None or self.image_shape is None:
            raise ValueError("num_symbols needs both cbr and image_shape")
        h, w = self.image_shape
        n = Fraction(self.cbr) * 3 * h * w
        if n.denominator != 1:
            raise ValueError(f"cbr {self.cbr} gives {n} symbols for {h}x{w} images, not an integer")
        return int(n)

    def grid_info(self, num_symbols: int | None = None):
        """:class:`linksim.phy.grid.GridInfo` of ``num_symbols`` (default :attr:`num_symbols`) data
        symbols on this point's channel; a ``ValueError`` (``GridError``) when they do not fit."""
        n = self.num_symbols if num_symbols is None else int(num_symbols)
        if self.layout is not None:
            return self.layout(n)
        from linksim.phy.chains import grid_info  # no declared layout: the link class (imports torch)

        return grid_info(self.link, n)
