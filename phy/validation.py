"""Argument checks with one message format (after Sionna's ``sionna/_validation.py``).

Each helper raises :class:`ValueError` whose text names the argument, what is allowed and what was
given, e.g. ``estimator must be one of ('perfect', 'ls', 'lmmse'); got 'mmse'``. The physical layer
and the codecs use them instead of hand-written ``if x not in (...): raise`` chains.

>>> check_one_of("equalizer", "zf", ("zf", "mmse"))
'zf'
>>> check_one_of("equalizer", "lmmse", ("zf", "mmse"))
Traceback (most recent call last):
...
ValueError: equalizer must be one of ('zf', 'mmse'); got 'lmmse'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_one_of"]


def check_one_of(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed``; else ``ValueError`` naming ``name``, the allowed values
    and ``value``.

    :param name: the argument's name as the caller knows it (``estimator``, ``precision``)
    :param allowed: the allowed values (any iterable; shown as a tuple)
    :output: ``value`` unchanged
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value
