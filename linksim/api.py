"""The Python API: what a notebook user does first.

>>> import linksim
>>> res = linksim.run({"name": "demo", "data": {"size": 32, "limit": 2}, "channel": {"kind": "awgn"},
...                    "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"]},
...                    "methods": [{"kind": "jscc"}]}, output="results/demo")   # doctest: +SKIP
>>> res.summary[["method", "csnr_db", "psnr", "psnr_ci95"]]                     # doctest: +SKIP

:func:`run` validates (the same one-line :class:`linksim.errors.ScenarioError` as the CLI), runs
every unfinished (method, point) job into the output folder (resume unless ``fresh``), makes the
figures and reports, and returns :class:`Results`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Results", "load_scenario", "run"]


def load_scenario(scenario: Any):
    """A validated :class:`linksim.scenario.Scenario` from a dict (YAML-like data), a path to a
    YAML file, or a Scenario (returned as is).

    :raises linksim.errors.ScenarioError: the first problem, one line with the key path
    """
    from linksim.scenario import Scenario, scenario_from_dict
    from linksim.scenario import load_scenario as _load_file

    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, (str, Path)):
        return _load_file(scenario)
    return scenario_from_dict(dict(scenario))


@dataclass
class Results:
    """A run folder, read back.

    :param dir: the output folder
    :param scenario: the validated scenario
    :param figures: figure files written (PNG and PDF) and the reports
    """

    dir: Path
    scenario: Any
    figures: list[Path] = field(default_factory=list)

    @property
    def rows(self):
        """``results.csv`` as a pandas DataFrame: one row per image x draw x method x point."""
        import pandas as pd

        return pd.read_csv(self.dir / "results.csv")

    @property
    def summary(self):
        """``summary.csv`` as a pandas DataFrame: per method x point means, ``_ci95``, outage, FID/KID."""
        import pandas as pd

        return pd.read_csv(self.dir / "summary.csv")

    def __repr__(self) -> str:
        return f"Results(dir={str(self.dir)!r}, rows={len(self.rows)}, figures={len(self.figures)})"


def run(scenario: Any, *, output: str | Path | None = None, fresh: bool = False, figures: bool = True,
        strict_metrics: bool = False) -> Results:
    """Run a scenario (dict, YAML path or Scenario) and return its :class:`Results`.

    :param output: output folder (default: the scenario's ``output`` or ``results/<name>``)
    :param fresh: start over instead of resuming finished points
    :param figures: make the figures, ``report.md`` and ``report.tex``
    :param strict_metrics: a metric whose weights are absent is an error (before any work)
    """
    from linksim.cli import _plot
    from linksim.runner import run_scenario

    scn = load_scenario(scenario)
    out = run_scenario(scn, output=output, fresh=fresh, strict_metrics=strict_metrics)
    made = _plot(out) if figures else []
    return Results(Path(out), scn, [Path(p) for p in made])
