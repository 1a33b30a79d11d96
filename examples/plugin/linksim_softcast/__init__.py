"""Example linksim plug-in: ``kind: softcast``, a linear analog JSCC method (SoftCast-style).

Installed with ``pip install -e examples/plugin``, it registers itself through the
``linksim.methods`` entry point; a scenario then names it like a built-in::

    methods:
      - {name: softcast, kind: softcast}
"""

from __future__ import annotations

__all__ = ["register"]


def register(registry) -> None:
    """Entry point: add ``softcast`` to linksim's method registry (once)."""
    if "softcast" not in registry:
        registry.add("softcast", "linksim_softcast.method:SoftCastMethod", "linksim_softcast.method:SoftCastConfig",
                     "example plug-in: linear analog JSCC, the lowest-frequency DCT coefficients as symbols")
