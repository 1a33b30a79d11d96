"""``"package.module:attr"`` references, resolved on first use (torch-free).

One resolver for the two places that name code by string so that nothing is imported before it is
needed: the registry's lazy entries (:mod:`linksim.registry`) and :attr:`LinkConfig.link`, the link
class the engine hands the PHY (:func:`linksim.phy.chains.link_class`). It lives in the lowest layer
because the PHY may not import the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["import_ref"]


def import_ref(ref: Any) -> Any:
    """Resolve ``"package.module:attr"`` (``attr`` may be dotted: ``"pkg.mod:Class.method"``); a
    non-string is returned as it is.

    >>> import_ref("fractions:Fraction")(1, 3)
    Fraction(1, 3)
    >>> import_ref("os.path:join.__name__")
    'join'
    """
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj
