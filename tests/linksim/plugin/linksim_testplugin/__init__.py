"""A test plug-in registered through the ``linksim.methods`` entry point (see ``methods.py``).

The entry point runs while ``linksim.registry`` is being imported, so it names its classes as
``"module:attr"`` strings: importing ``linksim.scenario`` here would be a circular import.
"""

from __future__ import annotations


def register(registry) -> None:
    """The entry point: ``linksim.methods = plugin = linksim_testplugin:register``."""
    for name, cls in (("plugin_study", "PluginStudy"), ("plugin_image", "PluginImageMethod")):
        if name not in registry:
            registry.add(name, f"linksim_testplugin.methods:{cls}",
                         f"linksim_testplugin.methods:{cls.replace('Method', '')}Config", f"test plug-in ({cls})")
