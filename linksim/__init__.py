"""linksim: end-to-end link simulator for wireless image transmission with generative receivers.

Kept light on purpose (DESIGN.md §1): importing ``linksim`` or ``linksim.phy`` pulls in neither the
engine nor torch; :func:`run`, :func:`load_scenario` and :class:`Results` (:mod:`linksim.api`) are
imported on first use.

>>> import linksim
>>> res = linksim.run("scenarios/quickstart.yaml")        # doctest: +SKIP
>>> res.summary.head()                                    # doctest: +SKIP
"""

__version__ = "0.1.0"

__all__ = ["run", "load_scenario", "Results", "__version__"]
_API = ("run", "load_scenario", "Results")


def __getattr__(name):
    if name in _API:
        from linksim import api

        return getattr(api, name)
    raise AttributeError(f"module 'linksim' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
