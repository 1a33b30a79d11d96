"""Registries: the one place that knows every channel, method and metric a scenario may name.

A :class:`Registry` maps a short, stable, snake_case name (what users type in YAML: ``awgn``,
``phy_ber``, ``hevc_ldpc``) to an implementation and its pydantic config model. The scenario
validator, ``linksim list`` and the engine read these tables; no other list of names exists.

The tables are filled from :data:`BUILTINS` below (one explicit list of the built-in components)
and then from the Python entry-point groups ``linksim.channels``, ``linksim.methods`` and
``linksim.metrics`` of third-party packages, on the first lookup in any table (not at import: a
plug-in module may import ``linksim`` itself without a circular import). An entry point loads a
callable ``register(registry)`` that calls :meth:`Registry.add` (the name of the entry point itself is
only informational)::

    # pyproject.toml of a plug-in
    [project.entry-points."linksim.methods"]
    my_method = "my_pkg.linksim_plugin:register"

Implementations and config models may be given as ``"module:attribute"`` strings; they are
imported on first use, so ``linksim list`` and ``import linksim.registry`` stay light (no torch).

What the engine needs to know of a component is declared by its class and read through this table,
never found by class checks: a channel's implementation is its :class:`linksim.phy.links.Link`
class (the chains build it from ``LinkConfig.link``, :meth:`linksim.channels.ChannelConfig.link_config`);
a method's config model declares ``sends_images`` (image method or phy study: a
:class:`linksim.studies.StudyConfig`) and its static checks (``check_point``), read without
importing the method; its class declares, for studies, ``result_columns``; a metric is a factory ``(device, allow_download) -> Metric``.

**Adding a built-in component** = one line in :data:`BUILTINS` (plus its file and its tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from linksim.phy.refs import import_ref

__all__ = ["Entry", "Registry", "CHANNELS", "METHODS", "METRICS", "BUILTINS", "load_entry_points"]


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
        self.cls = import_ref(self.cls)
        return self.cls

    def config(self) -> Any:
        """The config model, imported on first use."""
        self.config_model = import_ref(self.config_model)
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

    @property
    def _table(self) -> dict[str, Entry]:
        """The entries, after the built-ins and the entry points were loaded (on the first lookup)."""
        _ensure_loaded()
        return self._entries

    def add(self, name: str, cls: Any, config_model: Any = None, description: str = "") -> None:
        """Register ``name``; a second registration of the same name raises ``ValueError``."""
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"{self.kind} name must be snake_case; got {name!r}")
        if name in self._table:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, cls, config_model, description)

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests that register fakes)."""
        self._entries.pop(name, None)

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` of ``name``; ``KeyError`` naming the known names otherwise."""
        try:
            return self._table[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}") from None

    def get(self, name: str) -> Any:
        """The implementation registered as ``name`` (imported on first use)."""
        return self.entry(name).load()

    def config(self, name: str) -> Any:
        """The config model registered for ``name``."""
        return self.entry(name).config()

    def names(self, sort: bool = True) -> list[str]:
        """Registered names, sorted (``sort=False``: in registration order, the built-ins first)."""
        return sorted(self._table) if sort else list(self._table)

    def describe(self) -> dict[str, str]:
        """``{name: one-line description}``, sorted by name."""
        return {n: self._table[n].description for n in self.names()}

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __len__(self) -> int:
        return len(self._table)


CHANNELS = Registry("channel")
METHODS = Registry("method")
METRICS = Registry("metric")

#: The built-in components, one line each: (name, implementation, config model, description).
#: Channels: the :class:`linksim.phy.links.Link` class of the kind and the model of the scenario's
#: ``channel:`` section (mapped onto :class:`linksim.phy.links.LinkConfig`). Metrics: a factory
#: ``(device, allow_download) -> linksim.metrics.Metric``, no config model; in results-column order.
BUILTINS: dict[Registry, list[tuple[str, Any, Any, str]]] = {
    CHANNELS: [
        ("awgn", "linksim.phy.channels:FlatLink", "linksim.channels:AWGNConfig",
         "additive white Gaussian noise, CN(0, N0) per complex symbol"),
        ("rayleigh", "linksim.phy.channels:FlatLink", "linksim.channels:RayleighConfig",
         "flat Rayleigh block fading, h ~ CN(0, 1) per coherence block, + AWGN"),
        ("ofdm", "linksim.phy.ofdm:OFDMLink", "linksim.channels:OFDMConfig",
         "OFDM over exponential power-delay-profile multipath, pilots, LS/LMMSE estimation"),
        ("tdl", "linksim.phy.ofdm:OFDMLink", "linksim.channels:TDLConfig",
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
    METRICS: [
        ("psnr", "linksim.metrics:psnr_factory", None, "PSNR in dB, data range 1, per image"),
        ("ms_ssim", "linksim.metrics:ms_ssim_factory", None,
         "MS-SSIM (fewer scales below 176 px; variant stated in run.json)"),
        ("lpips", "linksim.metrics.perceptual:lpips_alex_factory", None,
         "LPIPS v0.1, AlexNet backbone (needs alexnet-owt-7be5be79.pth)"),
        ("lpips_vgg", "linksim.metrics.perceptual:lpips_vgg_factory", None,
         "LPIPS v0.1, VGG16 backbone (needs vgg16-397923af.pth)"),
        ("dists", "linksim.metrics.perceptual:dists_from_weights", None, "DISTS, VGG16 backbone (needs vgg16-397923af.pth)"),
        ("fid", "linksim.metrics.distribution:fid_factory", None,
         "FID, Inception 2015-12-05 pool features (per set; standard file or fid-helper port)"),
        ("kid", "linksim.metrics.distribution:kid_factory", None,
         "KID, unbiased cubic-kernel MMD^2 on Inception features (per set)"),
        ("miou", "linksim.metrics.miou:miou_factory", None,
         "mIoU of the embedded scene segmenter on the output vs the sent labels (labelled data)"),
    ],
}

_GROUPS = {CHANNELS: "linksim.channels", METHODS: "linksim.methods", METRICS: "linksim.metrics"}


#: (group, entry-point value) -> the names its ``register`` added (an entry point is loaded once;
#: again only when a name it added was removed since, e.g. by a test)
_LOADED: dict[tuple[str, str], list[str]] = {}
_STATE = {"filled": False}


def _ensure_loaded() -> None:
    """Fill the tables once: the built-ins, then the entry points (first lookup in any table)."""
    if _STATE["filled"]:
        return
    _STATE["filled"] = True  # first: add() and a plug-in's register() look names up
    for registry, rows in BUILTINS.items():
        for name, cls, config_model, description in rows:
            registry.add(name, cls, config_model, description)
    load_entry_points()


def load_entry_points() -> None:
    """Load third-party components from the entry-point groups. An entry point is loaded once; calling
    this again (after a plug-in was put on ``sys.path``) loads the new ones."""
    _ensure_loaded()
    for registry, group in _GROUPS.items():
        for ep in metadata.entry_points(group=group):
            added = _LOADED.get((group, ep.value))
            if added is not None and all(n in registry._entries for n in added):
                continue
            for n in added or ():
                registry.remove(n)
            before = set(registry._entries)
            ep.load()(registry)
            _LOADED[(group, ep.value)] = sorted(set(registry._entries) - before)
