"""Statistics of results rows: per-point means with intervals, outage, paired differences.

One place for the numbers that ``summary.csv`` (:meth:`linksim.store.ResultsStore.write_summary`),
``report.md`` / ``report.tex`` and the figures (:mod:`linksim.reports`) state, so they agree.

* A *sample* is one results row of an image method: one image in one channel draw
  (``channel.draws``); means and 95 % Student-t intervals are over the ``n = images × draws``
  samples of a point (``n`` is always stated next to them).
* **Outage**: a row with ``outage`` true delivered no decoded image (source outage: no bitstream fits
  the budget; or a CRC failure with the mid-grey fallback). ``outage_rate`` is their fraction,
  ``crc_failures`` the number of samples whose CRC failed (``crc_ok`` false, separation only);
  ``<metric>_no_outage`` is the mean over the samples that were not in outage (empty when all were).
* **Paired differences** (:func:`paired_differences`): ``method − reference`` per (image, draw) at
  the same point — common random numbers (:mod:`linksim.sweep`) make both see the same channel and
  noise, so the interval of the mean difference is much tighter than the two separate intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["t_interval", "summarize", "paired_differences", "as_bool", "SUMMARY_EXCLUDE"]

#: columns never averaged (identifiers, not measurements)
SUMMARY_EXCLUDE = ("image", "seed", "draw")


def t_interval(values, level: float = 0.95) -> tuple[float, float, int]:
    """Mean and half-width of the two-sided Student-t interval of the mean.

    :input values: [n] samples (NaN ignored)
    :output (mean, half_width, n): half width ``t_{(1+level)/2, n-1} * s / sqrt(n)``; NaN for n < 2
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(v.mean())
    if n < 2:
        return mean, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def as_bool(col: pd.Series) -> pd.Series:
    """A CSV column of booleans (``True``/``False``/``1``/``0``/empty) -> float 1/0/NaN."""
    if col.dtype == bool:
        return col.astype(float)
    mapped = col.map(lambda v: {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}.get(
        str(v).strip().lower(), math.nan) if not isinstance(v, (bool, np.bool_)) else float(v))
    return mapped.astype(float)


def summarize(img: pd.DataFrame, keys: list[str], point_metrics: dict | None = None,
              metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per point: ``n``, ``images``, ``draws``, means and ``_ci95`` half-widths, outage.

    :param img: results rows of image methods
    :param keys: the columns that identify a point (method, kind, channel, point, sweep axes)
    :param point_metrics: ``{(method, point): {set metric: value}}`` (FID, KID) copied per row
    :param metrics: metric columns that also get ``<metric>_no_outage`` means
    """
    point_metrics = point_metrics or {}
    set_cols = {c for pm in point_metrics.values() for c in pm}
    value_cols = [c for c in img.columns if c not in keys and c not in SUMMARY_EXCLUDE
                  and c not in set_cols and pd.api.types.is_numeric_dtype(img[c])]
    rows = []
    for key, g in img.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row["n"] = len(g)
        row["images"] = g["image"].nunique() if "image" in g else len(g)
        row["draws"] = int(pd.to_numeric(g["draw"], errors="coerce").nunique()) if "draw" in g else 1
        for c in value_cols:
            mean, half, _ = t_interval(pd.to_numeric(g[c], errors="coerce").to_numpy())
            row[c], row[f"{c}_ci95"] = mean, half
        outage = as_bool(g["outage"]) if "outage" in g else pd.Series(np.nan, index=g.index)
        row["outage_rate"] = float(outage.mean()) if outage.notna().any() else math.nan
        if "crc_ok" in g and as_bool(g["crc_ok"]).notna().any():
            row["crc_failures"] = int((as_bool(g["crc_ok"]) == 0).sum())
        else:
            row["crc_failures"] = math.nan
        for m in metrics or ():
            if m in g:
                kept = pd.to_numeric(g.loc[outage != 1, m], errors="coerce")
                row[f"{m}_no_outage"] = float(kept.mean()) if kept.notna().any() else math.nan
        row.update(point_metrics.get((row.get("method"), row.get("point")), {}))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(df: pd.DataFrame, metric: str, reference, by: list[str], column: str = "method") -> pd.DataFrame:
    """``value − reference`` of ``metric`` per (image, draw), averaged per point with a t-interval.

    By default the values compared are methods (``method − reference method`` at the same
    variant and point); with ``column`` a draw-neutral swept axis (``channel.estimator``) they are
    that axis' values (``ls − perfect`` for each method): common random numbers give both the same
    channel realisation and unit noise per (image, draw), so the pairs share everything else.

    :param df: results rows (columns ``column``, ``image``, ``metric``, optional ``draw``, and ``by``)
    :param reference: the value of ``column`` subtracted
    :param by: columns of a point (e.g. ``["variant", "csnr_db", "cbr"]``); rows pair on
        ``by + [image, draw]``
    :param column: the column whose values are compared
    :output: columns ``column, *by, mean, half, n`` (n = pairs); empty when nothing pairs
    """
    cols = [column, *by, "mean", "half", "n"]
    if metric not in df or column not in df or reference not in set(df[column]):
        return pd.DataFrame(columns=cols)
    pair = [*by, "image"] + (["draw"] if "draw" in df else [])
    d = df.assign(_v=pd.to_numeric(df[metric], errors="coerce"))
    ref = d[d[column] == reference][[*pair, "_v"]].rename(columns={"_v": "_ref"})
    out = []
    for value, g in d[d[column] != reference].groupby(column, sort=True):
        merged = g[[*pair, "_v"]].merge(ref, on=pair, how="inner")
        for key, mg in merged.groupby(by, sort=True):
            mean, half, n = t_interval((mg["_v"] - mg["_ref"]).to_numpy())
            if n:
                out.append({column: value, **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                            "mean": mean, "half": half, "n": n})
    return pd.DataFrame(out, columns=cols)
