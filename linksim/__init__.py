"""linksim: end-to-end link simulator for wireless image transmission with generative receivers.

Kept light on purpose (DESIGN.md §1): importing ``linksim.phy`` must not pull in the engine.
"""

__version__ = "0.1.0"
