"""Registries: the one place that knows every channel, method and metric a scenario may name.

A :class:`Registry` maps a short, stable, snake_case name (what users type in YAML: ``awgn``,
``phy_ber``, ``hevc_ldpc``) to an implementation and its pydantic config model. The scenario
validator, ``linksim list`` and the engine read these tables; no other list of names exists.

The tables are filled from :data:`BUILTINS` below (one explicit list of the built-in components)
and then from the Python entry-point groups ``linksim.channels``, ``linksim.methods`` and
``linksim.metrics`` of third-party packages. An entry point loads a callable ``register(registry)``
that calls :meth:`Registry.add` (the name of the entry point itself is only informational)::

    # pyproject.toml of a plug-in
    [project.entry-points."linksim.methods"]
    my_method = "my_pkg.linksim_plugin:register"

Implementations and config models may be given as ``"module:attribute"`` strings; they are
imported on first use, so ``linksim list`` and ``import linksim.registry`` stay light (no torch).

**Adding a built-in component** = one line in :data:`BUILTINS` (plus its file and its tests).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

__all__ = ["Entry", "Registry", "CHANNELS", "METHODS", "METRICS", "BUILTINS", "load_entry_points"]


def _import(ref: Any) -> Any:
    """Resolve ``"package.module:attr"`` (or return a non-string as is)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    """One registered component.

    :param name: the name users write in a scenario
    :param cls: the implementation (class or function), or a ``"module:attr"`` string
    :param config_model: pydantic model of its scenario section (or ``None``), or a string
    :param description: one line for ``linksim list``
    """

    name: str
    cls: Any
    config_model: Any
    description: str

    def load(self) -> Any:
        """The implementation, imported on first use."""
        self.cls = _import(self.cls)
        return self.cls

    def config(self) -> Any:
        """The config model, imported on first use."""
        self.config_model = _import(self.config_model)
        return self.config_model


class Registry:
    """A name -> component table of one kind (``channel``, ``method``, ``metric``).

    :param kind: what the table holds, used in messages ("unknown method 'x'; known: ...")

    >>> reg = Registry("method")
    >>> reg.add("dummy", object, None, "does nothing")
    >>> reg.names()
    ['dummy']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, cls: Any, config_model: Any = None, description: str = "") -> None:
        """Register ``name``; a second registration of the same name raises ``ValueError``."""
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"{self.kind} name must be snake_case; got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, cls, config_model, description)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests that register fakes)."""
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` of ``name``; ``KeyError`` naming the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}") from None

    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported on first use)."""
        return self.entry(name).load()

    def config(self, name: str) -> Any:
        """The config model registered for ``name``."""
        return self.entry(name).config()

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """``{name: one-line description}``, sorted by name."""
        return {n: self._entries[n].description for n in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


CHANNELS = Registry("channel")
METHODS = Registry("method")
METRICS = Registry("metric")

#: The built-in components, one line each: (name, implementation, config model, description).
#: Channels map the scenario's ``channel:`` section onto :class:`linksim.phy.links.LinkConfig`.
#: Metrics come from ``linksim.metrics.BUILTIN_METRICS`` (see :func:`_fill_builtins`).
BUILTINS: dict[Registry, list[tuple[str, Any, Any, str]]] = {
    CHANNELS: [
        ("awgn", "linksim.channels:build_link", "linksim.channels:AWGNConfig",
         "additive white Gaussian noise, CN(0, N0) per complex symbol"),
        ("rayleigh", "linksim.channels:build_link", "linksim.channels:RayleighConfig",
         "flat Rayleigh block fading, h ~ CN(0, 1) per coherence block, + AWGN"),
        ("ofdm", "linksim.channels:build_link", "linksim.channels:OFDMConfig",
         "OFDM over exponential power-delay-profile multipath, pilots, LS/LMMSE estimation"),
        ("tdl", "linksim.channels:build_link", "linksim.channels:TDLConfig",
         "OFDM over 3GPP TR 38.901 TDL-A..E multipath, pilots, LS/LMMSE estimation"),
    ],
    METHODS: [
        ("phy_ber", "linksim.studies:PhyBerStudy", "linksim.studies:PhyBerConfig",
         "phy-only study: BER/BLER of (un)coded QAM over the channel vs Eb/N0 or CSNR"),
        ("separation", "linksim.codecs.separation:SeparationMethod", "linksim.method_configs:SeparationConfig",
         "classical codec (HEVC/VVC/JPEG...) + CRC + 5G LDPC + QAM, fixed or adaptive MCS"),
        ("ideal", "linksim.codecs.separation:IdealSeparationBound", "linksim.method_configs:IdealBoundConfig",
         "bound: the codec fed floor(rho*3HW*log2(1+snr)) error-free bits (capacity-achieving separation)"),
        ("jscc", "linksim.codecs.jscc.method:JSCCMethod", "linksim.method_configs:JSCCConfig",
         "DeepJSCC (ADJSCC, SNR-adaptive) over the analog chain; embedded or external weights"),
        ("diffcom", "linksim.codecs.diffusion.method:DiffComMethod", "linksim.method_configs:DiffComConfig",
         "DiffCom: ADJSCC + diffusion posterior sampling guided by the received symbols"),
        ("hifi_diffcom", "linksim.codecs.diffusion.method:HiFiDiffComMethod",
         "linksim.method_configs:HiFiDiffComConfig",
         "HiFi-DiffCom: DiffCom with adaptive start from the JSCC decode + decoder consistency"),
        ("blind_diffcom", "linksim.codecs.diffusion.method:BlindDiffComMethod",
         "linksim.method_configs:BlindDiffComConfig",
         "Blind-DiffCom: joint image + multipath-tap posterior sampling, no channel estimation (ofdm)"),
        ("diffjscc", "linksim.codecs.diffjscc.method:DiffJSCCMethod", "linksim.method_configs:DiffJSCCConfig",
         "DiffJSCC: x16 ResNet JSCC decode refined by a conditional diffusion model (embedded DDPM | SD 2.1)"),
        ("gesco", "linksim.codecs.gesco.method:GescoMethod", "linksim.method_configs:GescoConfig",
         "GESCO: semantic maps (analog / digital / paper noise) -> SPADE diffusion receiver with CFG"),
        ("lrisc", "linksim.codecs.lrisc.method:LRISCMethod", "linksim.method_configs:LRISCConfig",
         "LRISC: hyperprior latent, adaptive-length SNR-adaptive JSCC, latent-conditioned diffusion decoder"),
    ],
    METRICS: [],
}

_GROUPS = {CHANNELS: "linksim.channels", METHODS: "linksim.methods", METRICS: "linksim.metrics"}


def _fill_builtins() -> None:
    for registry, rows in BUILTINS.items():
        for name, cls, config_model, description in rows:
            registry.add(name, cls, config_model, description)
    # Metrics: the metrics package keeps its own explicit list (name, factory, description);
    # ``factory(device, allow_download) -> linksim.metrics.Metric``. No config model.
    from linksim.metrics import BUILTIN_METRICS

    for name, factory, description in BUILTIN_METRICS:
        METRICS.add(name, factory, None, description)


def load_entry_points() -> None:
    """Load third-party components from the entry-point groups (called once at import)."""
    for registry, group in _GROUPS.items():
        for ep in metadata.entry_points(group=group):
            register = ep.load()
            register(registry)


_fill_builtins()
load_entry_points()
