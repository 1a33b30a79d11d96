"""The results folder of a run (DESIGN.md §5): durable appends, resume, summary, run record.

Files in ``output``:

* ``results.csv`` — one row per image × method × sweep point (image methods) or per method ×
  sweep point (phy studies); the header is fixed at the start of a run (:func:`columns_for`);
* ``points.jsonl`` — one line per *finished* job ``{"method", "point", "seconds", "point_metrics"}``.
  A job's rows are appended to ``results.csv`` and fsynced first, then its line here: a job is
  finished iff its line exists, so a run killed between the two writes loses nothing finished
  and ``--resume`` drops the orphan rows;
* ``summary.csv`` — per method × point: means and 95 % intervals (Student t) of the per-image
  columns and the set metrics (FID, KID); phy rows are copied as they are;
* ``scenario.yaml`` — the resolved scenario; ``run.json`` — versions, device, seed, timings,
  ``metrics`` (``{name: Metric.describe()}``: which implementation and weights made the numbers) and
  ``unavailable_metrics`` (``{name: reason}``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from linksim.errors import LinksimError

__all__ = ["ResultsStore", "columns_for", "IMAGE_COLUMNS", "TIMING_COLUMNS"]

#: DESIGN.md §5 columns of image rows (metrics that were not requested stay empty).
IMAGE_COLUMNS = [
    "method", "kind", "channel", "csnr_db", "cbr", "image", "psnr", "ms_ssim", "lpips", "dists",
    "outage", "payload_bits", "channel_uses", "seconds", "seed",
]
#: Discrete-event columns of image rows (DESIGN.md §6).
TIMING_COLUMNS = ["nfe", "t_arrival", "t_done", "latency_s", "queue_s", "airtime_s", "deadline_missed"]


def columns_for(scenario) -> list[str]:
    """The ``results.csv`` header of ``scenario``: fixed columns, then sweep axes, metrics, timing."""
    from linksim.engine import metric_names
    from linksim.registry import METHODS
    from linksim.studies import PHY_COLUMNS, Study

    kinds = [METHODS.get(m.kind) for m in scenario.methods]
    has_study = any(isinstance(c, type) and issubclass(c, Study) for c in kinds)
    has_images = not all(isinstance(c, type) and issubclass(c, Study) for c in kinds)
    cols = ["method", "kind", "channel", "point"]
    cols += list(scenario.sweep)
    if has_images:
        cols += IMAGE_COLUMNS + metric_names(scenario) + TIMING_COLUMNS
        for cls in kinds:
            cols += list(getattr(cls, "extra_columns", ()))
    if has_study:
        cols += PHY_COLUMNS + ["seed"]
    return list(dict.fromkeys(cols))


#: scenario keys that change how a run is executed, never its numbers: a resumed run may differ in them
EXECUTION_KEYS = ("output", "executor", "workers", "threads")


def _results_identity(dumped: dict) -> dict | None:
    """What must match for a folder's results to be resumed: the scenario re-validated with the
    current models (keys added to linksim since the folder was written get their defaults, so an
    upgrade does not orphan old runs), without :data:`EXECUTION_KEYS`; ``None`` if it no longer
    validates."""
    from linksim.errors import LinksimError
    from linksim.scenario import scenario_from_dict

    try:
        d = scenario_from_dict(dumped, check_points=False).dump()
    except LinksimError:
        return None
    return {k: v for k, v in d.items() if k not in EXECUTION_KEYS}


def _fsync_append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class ResultsStore:
    """The output folder of one scenario run.

    :param out_dir: the folder (created)
    :param scenario: the validated scenario
    :param fresh: start over (delete previous results) instead of resuming
    :raises LinksimError: resuming into a folder written by a different scenario or header
    """

    def __init__(self, out_dir: str | Path, scenario, fresh: bool = False):
        self.dir = Path(out_dir)
        self.scenario = scenario
        self.results = self.dir / "results.csv"
        self.points = self.dir / "points.jsonl"
        self.columns = columns_for(scenario)
        self.dir.mkdir(parents=True, exist_ok=True)
        resolved = scenario.dump()
        old = self.dir / "scenario.yaml"
        if fresh:
            for p in (self.results, self.points, self.dir / "summary.csv", self.dir / "run.json",
                      self.dir / "report.md"):
                p.unlink(missing_ok=True)
            # saved images of an earlier run would otherwise end up in this run's report grids
            for d in ("figures", "recon"):
                shutil.rmtree(self.dir / d, ignore_errors=True)
        elif old.exists() and self.points.exists():
            if _results_identity(yaml.safe_load(old.read_text()) or {}) != _results_identity(resolved):
                raise LinksimError(
                    f"{self.dir}: holds results of a different scenario; rerun with --fresh to overwrite "
                    f"or choose another --output"
                )
        old.write_text(yaml.safe_dump({k: v for k, v in resolved.items() if k != "output"}, sort_keys=False))
        self._recover()

    # -- resume ---------------------------------------------------------------------------------
    def finished(self) -> set[tuple[str, str]]:
        """``(method, point key)`` of every finished job."""
        if not self.points.exists():
            return set()
        out = set()
        for line in self.points.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out.add((rec["method"], rec["point"]))
        return out

    def _recover(self) -> None:
        """Check the header; drop rows of jobs that were not finished (killed mid-job)."""
        if not self.results.exists():
            with self.results.open("w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerow(self.columns)
                f.flush()
                os.fsync(f.fileno())
            return
        with self.results.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != self.columns:
                raise LinksimError(
                    f"{self.results}: columns differ from this scenario's; rerun with --fresh"
                )
            rows = list(reader)
        done = self.finished()
        keep = [r for r in rows if (r["method"], r["point"]) in done]
        if len(keep) != len(rows):
            tmp = self.results.with_suffix(".csv.tmp")
            with tmp.open("w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(keep)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.results)

    # -- writing --------------------------------------------------------------------------------
    def append(self, method: str, point: str, result) -> None:
        """Store one finished job durably: its rows, then its ``points.jsonl`` record.

        :param result: :class:`linksim.engine.JobResult`
        """
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, self.columns, restval="", extrasaction="raise")
        for row in result.rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
        _fsync_append(self.results, buf.getvalue())
        rec = {"method": method, "point": point, "seconds": result.seconds,
               "point_metrics": result.point_metrics, "unavailable": result.unavailable,
               "metrics": getattr(result, "metrics", {})}
        _fsync_append(self.points, json.dumps(rec) + "\n")

    def read(self):
        """``results.csv`` as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.results)

    def write_summary(self) -> Path:
        """``summary.csv``: means and 95 % intervals per method × point (phy rows as they are)."""
        import numpy as np
        import pandas as pd
        from scipy import stats

        df = self.read()
        path = self.dir / "summary.csv"
        if df.empty:
            df.to_csv(path, index=False)
            return path
        point_metrics = {}
        for line in self.points.read_text().splitlines():
            rec = json.loads(line)
            point_metrics[(rec["method"], rec["point"])] = rec.get("point_metrics") or {}
        parts = []
        phy = df[df["image"].isna()] if "image" in df else df
        if not phy.empty:
            parts.append(phy.dropna(axis=1, how="all"))
        if "image" in df:
            img = df[df["image"].notna()]
            keys = ["method", "kind", "channel", "point"] + [c for c in self.scenario.sweep if c in img]
            set_cols = {c for pm in point_metrics.values() for c in pm}
            # set metrics (FID, KID) have one value per point, from points.jsonl, not per image
            value_cols = [c for c in img.columns if c not in keys + ["image", "seed"]
                          and c not in set_cols and pd.api.types.is_numeric_dtype(img[c])]
            rows = []
            for key, g in img.groupby(keys, sort=False, dropna=False):
                row = dict(zip(keys, key))
                row["images"] = len(g)
                for c in value_cols:
                    v = g[c].dropna().to_numpy(dtype=float)
                    row[c] = v.mean() if v.size else np.nan
                    row[f"{c}_ci95"] = (stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
                                        if v.size > 1 else np.nan)
                row.update(point_metrics.get((row["method"], row["point"]), {}))
                rows.append(row)
            if rows:
                parts.append(pd.DataFrame(rows))
        pd.concat(parts, ignore_index=True).to_csv(path, index=False)
        return path

    def write_run_json(self, info: dict[str, Any]) -> Path:
        """``run.json``: versions, device, seed, timings, ``metrics``, ``unavailable_metrics`` (merged
        with ``info``); the metric records are gathered from every finished job, resumed ones too."""
        import platform

        versions = {"python": platform.python_version()}
        for mod in ("torch", "sionna", "numpy", "simpy"):
            try:
                versions[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - a missing optional package is recorded as such
                versions[mod] = None
        from linksim import __version__

        versions["linksim"] = __version__
        unavailable: dict = {}
        metrics: dict = {}
        if self.points.exists():
            for line in self.points.read_text().splitlines():
                rec = json.loads(line)
                unavailable.update(rec.get("unavailable") or {})
                metrics.update(rec.get("metrics") or {})
        record = {"versions": versions, "seed": self.scenario.seed, "metrics": metrics,
                  "unavailable_metrics": unavailable, **info}
        path = self.dir / "run.json"
        path.write_text(json.dumps(record, indent=2, default=str))
        return path
