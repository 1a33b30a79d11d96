"""Rate-distortion-perception reports from a run folder (DESIGN.md §5).

:func:`make_report` reads ``results.csv`` (one row per image x draw x method x sweep point), and if
present ``summary.csv`` (set metrics such as FID and KID per method x point), ``run.json`` and
``scenario.yaml`` (which metrics were requested, the image size), and writes

- ``figures/<metric>_vs_csnr.{png,pdf}``: one panel per CBR, one line per *series*;
  ``figures/<metric>_vs_cbr.{png,pdf}``: one panel per CSNR, CBR on a log2 axis. A series is a
  method on one channel variant: with a swept channel axis (``channel.estimator``,
  ``channel.kind``, ``channel.tdl_model``, ...) every value is a line of the same figure (colour =
  method, line style = channel variant), so the variants are compared on one figure;
- ``figures/<metric>_bars.{png,pdf}`` when no axis has two values (a one-point run still gets a figure);
- ``figures/distortion_perception.{png,pdf}``: the distortion–perception plane (PSNR or MS-SSIM
  against FID, KID, LPIPS or DISTS) per operating point, one panel per CBR, NFE as labels;
- traffic runs (the per-frame columns that :func:`linksim.frames.frame_columns` declares for the
  saved ``traffic:``): ``figures/quality_vs_latency.{png,pdf}`` (the decoded frame's quality and the
  quality within the deadline against the mean simulated latency, per method and CSNR, with the
  operating frontier and the deadline), ``figures/deadline_miss_vs_csnr``, ``figures/aoi_s_vs_csnr``
  and ``figures/<metric>_in_time_vs_csnr``;
- ``figures/psnr_vs_bpp.{png,pdf}``: the separation methods' quality against their payload rate
  (bits per pixel), when they delivered images;
- ``figures/recon_<variant>_<csnr>dB_cbr<cbr>.{png,pdf}``: reconstruction grids (original | each
  series) when the run saved images;
- ``report.md`` and ``report.tex`` (booktabs): one table per (CSNR, CBR) with the requested metrics,
  outage rate, CRC failures, means without the outage images, NFE, seconds; paired differences
  against a reference method.

Intervals: mean ± 95 % Student-t half-width over the ``n = images × draws`` samples of a point;
figures draw a band only from :data:`MIN_BAND_N` samples on (with fewer the t quantile makes the
band meaningless, e.g. ±12.7 standard errors for n = 2) and say so in the caption.

Bounds: a method of kind ``ideal`` and any column ``<metric>_bound`` are drawn dashed and labelled as
bounds, never as achievable methods.

Saved images (written by the engine with ``save_images: true``)::

    recon/original/<image>.png                       the reference images, once per run
    recon/<method>/<point folder>/<image>.png        folder from linksim.sweep.point_dirname

Rows of phy-only studies (a method kind whose config model declares ``sends_images = False``) are not image
results and are skipped here; the engine draws their BER figure.
"""

from __future__ import annotations

import json
import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from linksim.configs import DEFAULT_METRICS, TrafficConfig, sends_images
from linksim.errors import DataError
from linksim.files import atomic_path, atomic_write_text
from linksim.frames import IN_TIME_SUFFIX, frame_columns, in_time_metrics
from linksim.registry import METHODS
from linksim.summary import as_bool, paired_differences, t_interval
from linksim.sweep import parse_key, parse_point_dirname, point_dirname, safe_name

__all__ = ["METRIC_LABELS", "make_report", "recon_dirname", "t_interval", "MIN_BAND_N"]

log = logging.getLogger(__name__)

#: column -> (axis label with unit, higher is better)
METRIC_LABELS: dict[str, tuple[str, bool]] = {
    "psnr": ("PSNR [dB]", True),
    "ms_ssim": ("MS-SSIM", True),
    "lpips": ("LPIPS (AlexNet)", False),
    "lpips_vgg": ("LPIPS (VGG16)", False),
    "dists": ("DISTS", False),
    "miou": ("mIoU (scene segmenter)", True),
    "outage": ("outage rate", False),
    "deadline_missed": ("deadline-miss ratio", False),
    "aoi_s": ("age of information [s]", False),
    "latency_s": ("latency [s]", False),
}
SET_METRIC_LABELS: dict[str, tuple[str, bool]] = {"fid": ("FID", False), "kid": ("KID", False)}
#: metrics of the distortion–perception plane, in order of preference
DISTORTION = ("psnr", "ms_ssim")
PERCEPTION = ("fid", "kid", "lpips", "dists", "lpips_vgg")
#: digits of each column in tables
DIGITS = {"psnr": 2, "ms_ssim": 4, "lpips": 4, "lpips_vgg": 4, "dists": 4, "fid": 2, "kid": 4, "nfe": 0, "miou": 3}
PANEL_SIZE = (3.2, 2.6)  # inches per panel
LEGEND_WIDTH = 1.9  # inches right of the panels
DPI = 150
#: fewest samples (images x draws) per point for which a figure draws the 95 % band
MIN_BAND_N = 5
LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def recon_dirname(csnr_db: float, cbr) -> str:
    """Folder of one point's saved reconstructions without further axes (``10_1-24``); see
    :func:`linksim.sweep.point_dirname`."""
    cbr = Fraction(cbr).limit_denominator(1 << 20) if not isinstance(cbr, str) else cbr
    return point_dirname({"csnr_db": float(csnr_db), "cbr": cbr})


def _cbr_value(v) -> float:
    if isinstance(v, str) and "/" in v:
        return float(Fraction(v.strip()))
    return float(v)


def _cbr_label(cbr: float) -> str:
    frac = Fraction(cbr).limit_denominator(4096)
    if frac.numerator == 1 and abs(float(frac) - cbr) < 1e-9 * max(1.0, cbr):
        return f"1/{frac.denominator}"
    return f"{cbr:.4g}"


def _channel_axes(df: pd.DataFrame) -> list[str]:
    """Swept channel axes present as columns (``channel.estimator``, ...) with more than one value."""
    return [c for c in df.columns if c.startswith("channel.") and df[c].nunique(dropna=True) > 1]


def _variants(df: pd.DataFrame) -> pd.Series:
    """Per row: the channel variant label — the channel's label plus the swept channel axes that it
    does not already show (``ofdm/lmmse paths=4``)."""
    axes = [a for a in _channel_axes(df) if a not in ("channel.kind", "channel.estimator", "channel.tdl_model")]

    def label(r):
        parts = [str(r["channel"]) or "channel"]
        parts += [f"{a.split('.', 1)[1]}={r[a]}" for a in axes]
        return " ".join(parts)

    return df.apply(label, axis=1) if len(df) else pd.Series([], dtype=str)


def _image_kind(kind) -> bool:
    """Whether rows of method ``kind`` are image results: what its registered config model declares
    (``sends_images``); a kind not registered here (a plug-in not installed) is kept."""
    if not isinstance(kind, str) or kind not in METHODS:
        return True
    return sends_images(kind)


def _load(run_dir: Path, strict: bool):
    results_path = run_dir / "results.csv"
    if not results_path.is_file():
        if strict:
            raise DataError(results_path, "no results.csv: run `linksim run` first")
        log.warning("%s: no results.csv, nothing to report", results_path)
        return None, None, {}, {}
    df = pd.read_csv(results_path)
    if "kind" in df.columns:  # phy studies: their rows are drawn by the engine, not here
        df = df[[_image_kind(k) for k in df["kind"]]]
    missing = [c for c in ("method", "csnr_db", "cbr") if c not in df.columns]
    if missing:
        raise DataError(results_path, f"missing columns {missing}; see DESIGN.md §5")
    df = df.copy()
    df["cbr"] = df["cbr"].map(_cbr_value)
    df["csnr_db"] = df["csnr_db"].astype(float)
    for col, default in (("kind", ""), ("channel", "")):
        if col not in df.columns:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    if "outage" in df:
        df["outage"] = as_bool(df["outage"])
    df["variant"] = _variants(df)
    summary = None
    if (run_dir / "summary.csv").is_file():
        summary = pd.read_csv(run_dir / "summary.csv")
        if {"method", "csnr_db", "cbr"} <= set(summary.columns):
            summary = summary[summary["cbr"].notna()].copy()
            summary["cbr"] = summary["cbr"].map(_cbr_value)
            summary["csnr_db"] = summary["csnr_db"].astype(float)
        else:
            summary = None
    run_info = {}
    if (run_dir / "run.json").is_file():
        try:
            run_info = json.loads((run_dir / "run.json").read_text())
        except json.JSONDecodeError:
            log.warning("%s: unreadable run.json, ignored", run_dir / "run.json")
    scenario = {}
    if (run_dir / "scenario.yaml").is_file():
        import yaml

        try:
            scenario = yaml.safe_load((run_dir / "scenario.yaml").read_text()) or {}
        except yaml.YAMLError:
            log.warning("%s: unreadable scenario.yaml, ignored", run_dir / "scenario.yaml")
    return df, summary, run_info, scenario


def _present(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in cols if c in df.columns and pd.to_numeric(df[c], errors="coerce").notna().any()]


GROUP_KEYS = ["method", "kind", "variant", "csnr_db", "cbr"]


def _aggregate(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, 95 % half-width and n (images x draws) per method x variant x CSNR x CBR."""
    if "variant" not in df:
        df = df.assign(variant=df["channel"] if "channel" in df else "")
    rows = []
    for key, grp in df.groupby(GROUP_KEYS, sort=True):
        mean, half, n = t_interval(pd.to_numeric(grp[metric], errors="coerce").to_numpy())
        if n:
            rows.append(dict(zip(GROUP_KEYS, key), mean=mean, half=half, n=n))
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "mean", "half", "n"])


def method_labels(methods: list[dict], names) -> dict[str, str]:
    """Legend label per method: its name, plus — for methods that share a kind — the config keys
    whose values differ between them (``hifi (start_scale=0.5, step_scale=0.25)``), so variants
    of one method (two start scales, two step scales) are told apart in every figure.

    :param methods: the scenario's ``methods:`` entries (dicts, as in ``scenario.yaml``)
    :param names: the method names present in the results
    """
    out = {n: str(n) for n in names}
    by_kind: dict[str, list[dict]] = {}
    for m in methods or []:
        if isinstance(m, dict) and m.get("name") in out:
            by_kind.setdefault(m.get("kind"), []).append(m)
    for group in by_kind.values():
        if len(group) < 2:
            continue
        keys = sorted({k for m in group for k in m} - {"name", "kind"})
        differ = [k for k in keys if len({json.dumps(m.get(k), sort_keys=True, default=str) for m in group}) > 1]
        for m in group:
            shown = ", ".join(f"{k}={m.get(k)}" for k in differ[:3])
            if shown:
                out[m["name"]] = f"{m['name']} ({shown})"
    return out


class _Styles:
    """Colour per method, line style and marker per channel variant; legend labels per series.

    :param names: legend label per method (:func:`method_labels`; default: the method name)
    """

    def __init__(self, methods, variants, names: dict[str, str] | None = None):
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        self.methods = sorted(methods)
        self.variants = sorted(variants)
        self.names = names or {}
        self.colour = {m: cmap(i % 10) for i, m in enumerate(self.methods)}
        self.style = {v: LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(self.variants)}
        self.marker = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(self.variants)}

    def label(self, method, variant) -> str:
        name = self.names.get(method, method)
        return name if len(self.variants) <= 1 else f"{name}, {variant}"


def _save(fig, path: Path, formats=("png", "pdf")) -> list[Path]:
    import matplotlib.pyplot as plt

    out = []
    for ext in formats:
        p = path.parent / f"{path.name}.{ext}"  # not with_suffix: names may contain dots
        with atomic_path(p) as tmp:  # a kill mid-write leaves the old figure, never half of one
            fig.savefig(tmp, dpi=DPI)
        out.append(p)
    plt.close(fig)
    return out


def _figure(panels: int):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(PANEL_SIZE[0] * panels + LEGEND_WIDTH, PANEL_SIZE[1]),
                             squeeze=False, layout="constrained")
    return fig, axes[0]


def _legend(fig, axes) -> None:
    """One legend for the figure, outside the axes on the right (never over the curves)."""
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if labels:
        fig.legend([handles[lab] for lab in labels], labels, loc="outside right center", fontsize=7, frameon=False)


def _labels(metric: str) -> tuple[str, bool]:
    """(axis label, higher is better) of a metric column; a plug-in metric keeps its name;
    ``<metric>_in_time`` (:mod:`linksim.frames`) is the metric's label "within the deadline"."""
    if metric.endswith(IN_TIME_SUFFIX) and metric not in METRIC_LABELS:
        label, higher = _labels(metric[: -len(IN_TIME_SUFFIX)])
        head, _, unit = label.partition(" [")
        return f"{head} within deadline" + (f" [{unit}" if unit else ""), higher
    return (METRIC_LABELS | SET_METRIC_LABELS).get(metric, (metric, True))


def _short(metric: str) -> str:
    """The label without its unit: ``PSNR [dB]`` -> ``PSNR``."""
    return _labels(metric)[0].split(" [")[0]


def _metric_label(metric: str) -> str:
    label, higher = _labels(metric)
    base = metric.removesuffix(IN_TIME_SUFFIX)  # psnr_in_time reads as plainly as psnr
    return label if base in ("psnr", "ms_ssim") else f"{label}, {'higher' if higher else 'lower'} is better"


def _curve_figure(agg: pd.DataFrame, bounds: pd.DataFrame | None, metric: str, x: str, panel: str,
                  styles: _Styles, ideal: set[str], title: str):
    """One panel per value of ``panel``; x-axis ``x`` (csnr_db or cbr); a line per series."""
    panels = sorted(agg[panel].unique())
    fig, axes = _figure(len(panels))
    # y-range from the means (and bounds): a 95 % band from few samples can be many times the spread
    # of the curves and would flatten every line; bands are clipped to it.
    lines = [agg["mean"]] + ([bounds["mean"]] if bounds is not None and len(bounds) else [])
    finite = pd.concat(lines).replace([np.inf, -np.inf], np.nan).dropna()
    ylim = None
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.12 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.05)
        ylim = (lo - pad, hi + pad)
    for ax, pv in zip(axes, panels):
        sub = agg[agg[panel] == pv]
        for (method, variant), grp in sub.groupby(["method", "variant"], sort=True):
            grp = grp.sort_values(x)
            xs, ys, hs = grp[x].to_numpy(), grp["mean"].to_numpy(), grp["half"].to_numpy()
            label = styles.label(method, variant)
            if method in ideal:
                ax.plot(xs, ys, linestyle=(0, (6, 2)), color="0.25", lw=1.2, label=f"{label} (bound)")
                continue
            ax.plot(xs, ys, linestyle=styles.style[variant], marker=styles.marker[variant], ms=3, lw=1.4,
                    color=styles.colour[method], label=label)
            ok = np.isfinite(hs) & (grp["n"].to_numpy() >= MIN_BAND_N)
            if ok.any():
                ax.fill_between(xs[ok], (ys - hs)[ok], (ys + hs)[ok], color=styles.colour[method], alpha=0.15, lw=0)
        if bounds is not None and len(bounds):
            bsub = bounds[bounds[panel] == pv].sort_values(x)
            if len(bsub):
                ax.plot(bsub[x], bsub["mean"], ":", color="k", lw=1.2, label="bound")
        if x == "cbr":
            ax.set_xscale("log", base=2)
            ticks = sorted(sub[x].unique())
            ax.set_xticks(ticks, [_cbr_label(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("CBR ρ [channel uses per pixel and colour]")
            ax.set_title(f"CSNR {pv:g} dB", fontsize=9)
        else:
            ax.set_xlabel("CSNR [dB]")
            ax.set_title(f"CBR {_cbr_label(pv)}", fontsize=9)
        ax.set_ylabel(_metric_label(metric), fontsize=8)
        ax.grid(True, alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    _legend(fig, axes)
    fig.suptitle(title, fontsize=10)
    return fig


def _declared_frame_columns(scenario: dict, metrics) -> tuple[list[str], float | None]:
    """``(per-frame columns, deadline_s)`` that the run's saved ``traffic:`` declares
    (:func:`linksim.frames.frame_columns`): the figures follow the declaration, not the data."""
    from pydantic import ValidationError

    try:
        traffic = TrafficConfig.model_validate(scenario.get("traffic") or {})
    except (ValidationError, ValueError):
        return [], None
    return frame_columns(traffic, in_time_metrics(list(metrics))), traffic.deadline_s


def _frontier_figure(df: pd.DataFrame, qualities: list[str], styles: _Styles, ideal: set[str],
                     deadline: float | None):
    """Quality vs mean latency, one panel per quality column (the decoded frame's, and the one within
    the deadline), one point per (method, channel variant, CSNR, CBR), a line per series through its
    CSNRs, and the operating frontier: the points no other point beats in both (lower latency and
    higher quality). Latency on a log axis (a DeepJSCC decode and a diffusion receiver are orders of
    magnitude apart); the deadline as a vertical line."""
    lat = _aggregate(df, "latency_s")
    fig, axes = _figure(len(qualities))
    drawn = False
    for ax, quality in zip(axes, qualities):
        pts = _aggregate(df, quality).merge(lat, on=GROUP_KEYS, suffixes=("_q", "_t"))
        pts = pts[~pts["method"].isin(ideal)]
        if pts.empty:
            continue
        drawn = True
        for (method, variant), grp in pts.groupby(["method", "variant"], sort=True):
            grp = grp.sort_values("csnr_db")
            ax.plot(grp["mean_t"], grp["mean_q"], linestyle=styles.style[variant], marker=styles.marker[variant],
                    ms=3, lw=1.0, color=styles.colour[method], label=styles.label(method, variant))
        higher = _labels(quality)[1]
        front, best = [], -math.inf
        for _, r in pts.sort_values(["mean_t", "mean_q"], ascending=[True, not higher]).iterrows():
            v = r["mean_q"] if higher else -r["mean_q"]
            if v > best:
                best = v
                front.append((r["mean_t"], r["mean_q"]))
        if len(front) > 1:
            ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="0.4", lw=0.9,
                    linestyle=(0, (4, 2)), label="operating frontier")
        if deadline is not None:
            ax.axvline(deadline, color="k", lw=0.8, linestyle=":", label=f"deadline {deadline:g} s")
        if (pts["mean_t"] > 0).all():
            ax.set_xscale("log")
        ax.set_xlabel("mean latency [s] (simulated)")
        ax.set_ylabel(_metric_label(quality), fontsize=8)
        ax.grid(True, alpha=0.3)
    if not drawn:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    _legend(fig, axes)
    return fig


def _bars_figure(agg: pd.DataFrame, metric: str, styles: _Styles, title: str):
    """A one-point run (or one value per axis): one bar per series, ±95 % where n ≥ MIN_BAND_N."""
    points = sorted({(c, r) for c, r in zip(agg["csnr_db"], agg["cbr"])})
    fig, axes = _figure(len(points))
    for ax, (c, r) in zip(axes, points):
        sub = agg[(agg["csnr_db"] == c) & (agg["cbr"] == r)].sort_values(["method", "variant"])
        labels = [styles.label(m, v) for m, v in zip(sub["method"], sub["variant"])]
        err = np.where(sub["n"].to_numpy() >= MIN_BAND_N, sub["half"].to_numpy(), np.nan)
        ax.bar(range(len(sub)), sub["mean"], color=[styles.colour[m] for m in sub["method"]])
        if np.isfinite(err).any():
            ax.errorbar(range(len(sub)), sub["mean"], yerr=err, fmt="none", ecolor="k", capsize=3, lw=1)
        ax.set_xticks(range(len(sub)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(_metric_label(metric), fontsize=8)
        ax.set_title(f"CSNR {c:g} dB, CBR {_cbr_label(r)}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return fig


def _dp_figure(dist: pd.DataFrame, perc: pd.DataFrame, dmetric: str, pmetric: str, nfe: pd.DataFrame | None,
               styles: _Styles, ideal: set[str]):
    """Distortion–perception plane: x = perception metric, y = distortion metric, per operating
    point (one panel per CBR); points of one series joined in CSNR order, labelled with the NFE."""
    keys = ["method", "variant", "csnr_db", "cbr"]
    both = dist[keys + ["mean"]].merge(perc[keys + ["mean"]], on=keys, suffixes=("_d", "_p"))
    if nfe is not None and len(nfe):
        both = both.merge(nfe[keys + ["mean"]].rename(columns={"mean": "nfe"}), on=keys, how="left")
    both = both[~both["method"].isin(ideal)]
    if both.empty:
        return None
    panels = sorted(both["cbr"].unique())
    fig, axes = _figure(len(panels))
    for ax, r in zip(axes, panels):
        sub = both[both["cbr"] == r]
        for (method, variant), g in sub.groupby(["method", "variant"], sort=True):
            g = g.sort_values("csnr_db")
            ax.plot(g["mean_p"], g["mean_d"], linestyle=styles.style[variant], marker=styles.marker[variant],
                    ms=3, lw=1, color=styles.colour[method], label=styles.label(method, variant))
            if "nfe" in g:
                for _, row in g.iterrows():
                    if np.isfinite(row.get("nfe", np.nan)) and row["nfe"] > 0:
                        ax.annotate(f"{row['nfe']:.0f}", (row["mean_p"], row["mean_d"]), fontsize=6,
                                    xytext=(2, 2), textcoords="offset points", color=styles.colour[method])
        ax.set_xlabel(_metric_label(pmetric), fontsize=8)
        ax.set_ylabel(_metric_label(dmetric), fontsize=8)
        ax.set_title(f"CBR {_cbr_label(r)}", fontsize=9)
        ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    fig.suptitle("Distortion–perception plane (labels: NFE)", fontsize=10)
    return fig


def _bpp_figure(df: pd.DataFrame, metric: str, pixels: int, styles: _Styles):
    """Separation methods: metric against payload bits per pixel, outage samples excluded."""
    sep = df[df["kind"].isin(["separation", "ideal"]) & (pd.to_numeric(df.get("payload_bits"), errors="coerce") > 0)]
    if "outage" in sep:
        sep = sep[sep["outage"] != 1]
    if sep.empty:
        return None
    sep = sep.assign(bpp=pd.to_numeric(sep["payload_bits"], errors="coerce") / pixels)
    panels = sorted(sep["cbr"].unique())
    fig, axes = _figure(len(panels))
    for ax, r in zip(axes, panels):
        sub = sep[sep["cbr"] == r]
        for (method, variant), g in sub.groupby(["method", "variant"], sort=True):
            pts = g.groupby("csnr_db")[["bpp", metric]].mean().sort_values("bpp")
            bound = g["kind"].iloc[0] == "ideal"  # drawn like the bounds of the other figures
            ax.plot(pts["bpp"], pts[metric], linestyle=(0, (6, 2)) if bound else "-",
                    marker="o", ms=3, lw=1.2, color="0.25" if bound else styles.colour[method],
                    label=styles.label(method, variant) + (" (bound)" if g["kind"].iloc[0] == "ideal" else ""))
        ax.set_xlabel("payload [bits per pixel]")
        ax.set_ylabel(_metric_label(metric), fontsize=8)
        ax.set_title(f"CBR {_cbr_label(r)}", fontsize=9)
        ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    fig.suptitle(f"{_short(metric)} vs payload rate (delivered images)", fontsize=10)
    return fig


def _recon_dirs(recon: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``{method folder: {point folder: parsed axis values}}`` of the saved reconstructions."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for mdir in sorted(p for p in recon.iterdir() if p.is_dir() and p.name != "original"):
        for pdir in sorted(p for p in mdir.iterdir() if p.is_dir()):
            parsed = parse_point_dirname(pdir.name)
            if parsed is not None:
                out.setdefault(mdir.name, {})[pdir.name] = parsed
    return out


def _same_value(a: str, b) -> bool:
    try:
        return math.isclose(_cbr_value(a), _cbr_value(b), rel_tol=1e-4, abs_tol=1e-9)
    except (ValueError, ZeroDivisionError, TypeError):
        return str(a) == str(b)


def _find_recon(dirs, recon: Path, method: str, rows: pd.DataFrame) -> Path | None:
    """The saved folder of ``method`` at the point of ``rows``: by the point key (exact name), else
    the parsed folder whose axis values match (older spellings)."""
    mdir = safe_name(method)
    if "point" in rows and rows["point"].notna().any():
        name = point_dirname(parse_key(str(rows["point"].iloc[0])))
        if (recon / mdir / name).is_dir():
            return recon / mdir / name
    want = {"csnr_db": rows["csnr_db"].iloc[0], "cbr": rows["cbr"].iloc[0]}
    want.update({a: rows[a].iloc[0] for a in rows.columns if a.startswith("channel.") and rows[a].notna().any()})
    for name, vals in dirs.get(mdir, {}).items():
        if set(vals) == set(want) and all(_same_value(vals[a], want[a]) for a in want):
            return recon / mdir / name
    return None


def _recon_grids(run_dir: Path, df: pd.DataFrame, fig_dir: Path, csnrs, styles: _Styles, max_images: int,
                 formats) -> list[Path]:
    """Grids original | each series, per chosen (CSNR, CBR) and channel variant, from saved PNGs."""
    import matplotlib.pyplot as plt
    from PIL import Image

    recon = run_dir / "recon"
    if not (recon / "original").is_dir():
        return []
    dirs = _recon_dirs(recon)
    out = []
    all_csnr = sorted(df["csnr_db"].unique())
    if csnrs is None:  # lowest, middle, highest CSNR of the sweep
        csnrs = sorted({all_csnr[0], all_csnr[len(all_csnr) // 2], all_csnr[-1]})
    for (variant, csnr, cbr), grp in df.groupby(["variant", "csnr_db", "cbr"], sort=True):
        if not any(abs(csnr - c) < 1e-6 for c in csnrs):
            continue
        cols = []
        for method, mg in grp.groupby("method", sort=True):
            folder = _find_recon(dirs, recon, method, mg)
            if folder is not None:
                cols.append((method, folder))
        images = [i for i in dict.fromkeys(grp["image"].astype(str)) if (recon / "original" / f"{i}.png").is_file()]
        images = images[:max_images]
        if not cols or not images:
            continue
        fig, axes = plt.subplots(len(images), len(cols) + 1, figsize=(1.6 * (len(cols) + 1), 1.6 * len(images) + 0.3),
                                 squeeze=False, layout="constrained")
        for r, img in enumerate(images):
            for c, (col, folder) in enumerate([("original", recon / "original"), *cols]):
                ax = axes[r][c]
                path = folder / f"{img}.png"
                if path.is_file():
                    ax.imshow(np.asarray(Image.open(path).convert("RGB")))
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(col, fontsize=8, color=styles.colour.get(col, "k"))
                if c == 0:
                    ax.set_ylabel(img, fontsize=7)
        fig.suptitle(f"{variant}, CSNR {csnr:g} dB, CBR {_cbr_label(cbr)}", fontsize=9)
        name = f"recon_{safe_name(variant)}_{csnr:g}dB_cbr{safe_name(_cbr_label(cbr))}"
        out += _save(fig, fig_dir / name, formats)
    return out


def _digits(col: str) -> int:
    return DIGITS.get(col.removesuffix("_no_outage"), 3)


def _fmt(mean: float, half: float, col: str) -> str:
    """A table cell: ``mean ± half`` at the column's precision; seconds with 3 significant digits."""
    if mean is None or not np.isfinite(mean):
        return "–"
    if col == "seconds":  # per-image share of a batch's time: no interval, 3 significant digits
        return f"{mean:.3g}"
    if col in ("outage_rate",):
        return f"{mean:.2f}"
    if col in ("crc_failures", "n"):
        return f"{mean:.0f}"
    if col == "channel_uses":  # half carries "min–max" here (set by the table writers), not an interval
        return f"{mean:.0f}" + (f" ({half})" if isinstance(half, str) else "")
    digits = _digits(col)
    s = f"{mean:.{digits}f}"
    if np.isfinite(half) and col != "nfe":
        s += f" ± {half:.{digits}f}"
    return s


def _half(r, col: str):
    """The second part of a table cell: the interval half-width, or for ``channel_uses`` the
    per-image range ``min–max`` when it varies (``None`` when it does not)."""
    if col == "channel_uses":
        lo, hi = r.get("channel_uses_min", math.nan), r.get("channel_uses_max", math.nan)
        return f"{lo:.0f}–{hi:.0f}" if np.isfinite(lo) and np.isfinite(hi) and lo != hi else None
    return r.get(f"{col}_half", math.nan)


def _requested_metrics(df, summary, scenario: dict, metrics) -> list[str]:
    """The metrics a report shows: the argument, else the scenario's ``metrics:`` (default psnr,
    ms_ssim), restricted to what has values; without a ``scenario.yaml`` every known metric column."""
    if metrics is not None:
        wanted = list(metrics)
    elif scenario:
        wanted = list(scenario.get("metrics") or DEFAULT_METRICS)
    else:
        wanted = [m for m in (METRIC_LABELS | SET_METRIC_LABELS) if m != "outage"]
    have = set(_present(df, wanted))
    if summary is not None:
        have |= set(_present(summary, wanted))
    return [m for m in wanted if m in have]


def _table_frame(df: pd.DataFrame, summary, metrics: list[str]) -> pd.DataFrame:
    """One row per (CSNR, CBR, variant, method): the values shown in report.md / report.tex."""
    has_outage = "outage" in df and df["outage"].notna().any()
    rows = []
    for (csnr, cbr, variant, method), g in df.groupby(["csnr_db", "cbr", "variant", "method"], sort=True):
        row = {"csnr_db": csnr, "cbr": cbr, "variant": variant, "method": method, "kind": g["kind"].iloc[0],
               "n": len(g)}
        outage = g["outage"] if has_outage else pd.Series(np.nan, index=g.index)
        for m in metrics:
            if m in SET_METRIC_LABELS or m not in g:
                val = math.nan
                if summary is not None and m in summary.columns:
                    s = summary[(summary["method"] == method) & np.isclose(summary["csnr_db"], csnr)
                                & np.isclose(summary["cbr"], cbr)]
                    if "channel" in s and s["channel"].nunique() > 1:
                        s = s[s["channel"] == g["channel"].iloc[0]]
                    vals = pd.to_numeric(s[m], errors="coerce").dropna()
                    val = float(vals.iloc[0]) if len(vals) == 1 else math.nan
                if not np.isfinite(val) and m in g:  # copied on image rows
                    vals = pd.to_numeric(g[m], errors="coerce").dropna()
                    val = float(vals.iloc[0]) if len(vals) else math.nan
                row[m], row[f"{m}_half"] = val, math.nan
                continue
            v = pd.to_numeric(g[m], errors="coerce")
            row[m], row[f"{m}_half"], _ = t_interval(v.to_numpy())
            if has_outage:
                row[f"{m}_no_outage"] = float(v[outage != 1].mean()) if (outage != 1).any() else math.nan
        row["outage_rate"] = float(outage.mean()) if outage.notna().any() else math.nan
        crc = as_bool(g["crc_ok"]) if "crc_ok" in g else pd.Series(np.nan, index=g.index)
        row["crc_failures"] = float((crc == 0).sum()) if crc.notna().any() else math.nan
        for c in ("nfe", "seconds"):
            vals = pd.to_numeric(g[c], errors="coerce") if c in g else pd.Series(dtype=float)
            row[c], row[f"{c}_half"], _ = t_interval(vals.to_numpy()) if vals.notna().any() else (math.nan,) * 3
        uses = pd.to_numeric(g["channel_uses"], errors="coerce").dropna() if "channel_uses" in g else pd.Series(dtype=float)
        row["channel_uses"] = float(uses.mean()) if len(uses) else math.nan
        row["channel_uses_min"] = float(uses.min()) if len(uses) else math.nan
        row["channel_uses_max"] = float(uses.max()) if len(uses) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _table_columns(tab: pd.DataFrame, metrics: list[str]) -> list[tuple[str, str]]:
    """(column, header) of the tables: requested metrics, outage, CRC, excl.-outage means, NFE, s."""
    cols = []
    for m in metrics:
        label, higher = _labels(m)
        cols.append((m, label + ("" if higher else " ↓")))
    if "outage_rate" in tab and tab["outage_rate"].notna().any():
        cols.append(("outage_rate", "outage"))
        if "crc_failures" in tab and tab["crc_failures"].notna().any():
            cols.append(("crc_failures", "CRC fail"))
        if (tab["outage_rate"] > 0).any():
            for m in metrics:
                if f"{m}_no_outage" in tab:
                    cols.append((f"{m}_no_outage", f"{_labels(m)[0]} excl. outage"))
    if "channel_uses" in tab and tab["channel_uses"].notna().any():
        # data symbols per image (the CBR numerator): equal for most methods, below the budget for
        # some (GESCO digital), varying per image for others (adaptive lengths) -> mean (min–max)
        cols.append(("channel_uses", "channel uses"))
    for c, h in (("nfe", "NFE"), ("seconds", "seconds")):
        if c in tab and tab[c].notna().any():
            cols.append((c, h))
    cols.append(("n", "n"))
    return cols


def _axis_differences(df: pd.DataFrame, metrics: list[str], scenario: dict) -> dict:
    """Paired differences of a swept draw-neutral channel axis against its first value (``ls −
    perfect`` for each method, per image and draw), for each such axis with more than one value.

    Only axes in :data:`linksim.sweep.DRAW_NEUTRAL_KEYS` (estimator, equaliser, clip ratio) pair:
    their values share the channel realisation and the unit noise at a point; other axes (the
    channel kind, the delay profile) draw different channels, so their differences are not paired.

    :output: ``{(metric, axis, reference value): paired_differences frame}``
    """
    from linksim.sweep import DRAW_NEUTRAL_KEYS

    axes = _channel_axes(df)
    out = {}
    for axis in [a for a in axes if a.split(".", 1)[1] in DRAW_NEUTRAL_KEYS]:
        order = [str(v) for v in (scenario.get("sweep") or {}).get(axis, [])]
        present = [str(v) for v in df[axis].dropna().unique()]
        values = [v for v in order if v in present] + sorted(v for v in present if v not in order)
        others = [a for a in axes if a != axis]
        sub = df.assign(**{axis: df[axis].astype(str)})
        for metric in metrics:
            d = paired_differences(sub, metric, values[0], ["method", *others, "csnr_db", "cbr"], column=axis)
            if len(d):
                out[(metric, axis, values[0])] = d
    return out


def _tables_md(tab: pd.DataFrame, cols, many_variants: bool, diffs: dict) -> list[str]:
    lines = []
    for (csnr, cbr), grp in tab.groupby(["csnr_db", "cbr"], sort=True):
        lines += [f"### CSNR {csnr:g} dB, CBR {_cbr_label(cbr)}", ""]
        head = ["method", "kind"] + (["channel"] if many_variants else []) + [h for _, h in cols]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|---|---|" + ("---|" if many_variants else "") + "---:|" * len(cols))
        for _, r in grp.sort_values(["variant", "method"]).iterrows():
            cells = [_fmt(r.get(c, math.nan), _half(r, c), c) for c, _ in cols]
            lead = [r["method"], r["kind"]] + ([r["variant"]] if many_variants else [])
            lines.append("| " + " | ".join(lead + cells) + " |")
        lines.append("")
        for (metric, column, ref), d in diffs.items():
            sub = d[np.isclose(d["csnr_db"], csnr) & np.isclose(d["cbr"], cbr)]
            if sub.empty:
                continue
            label = _labels(metric)[0]
            if column == "method":
                lines += [f"Paired differences, {label}: method − {ref} per image and draw (same channel and "
                          "noise), mean ± 95 % over the n pairs", "",
                          "| method | " + ("channel | " if many_variants else "") + f"Δ {label} | n |",
                          "|---|" + ("---|" if many_variants else "") + "---:|---:|"]
                for _, r in sub.sort_values(["variant", "method"]).iterrows():
                    lines.append(f"| {r['method']} | " + (f"{r['variant']} | " if many_variants else "")
                                 + f"{_fmt(r['mean'], r['half'], metric)} | {r['n']:.0f} |")
            else:
                axis = column.split(".", 1)[1]
                others = [c for c in sub.columns if c not in (column, "method", "csnr_db", "cbr", "mean", "half", "n")]
                lines += [f"Paired differences, {label}: {axis} − {ref} per image and draw (same method, channel "
                          "and noise), mean ± 95 % over the n pairs", "",
                          "| method | " + "".join(f"{o.split('.', 1)[1]} | " for o in others) + f"{axis} | "
                          f"Δ {label} | n |", "|---|" + "---|" * len(others) + "---|---:|---:|"]
                for _, r in sub.sort_values(["method", *others, column]).iterrows():
                    lines.append(f"| {r['method']} | " + "".join(f"{r[o]} | " for o in others)
                                 + f"{r[column]} | {_fmt(r['mean'], r['half'], metric)} | {r['n']:.0f} |")
            lines.append("")
    return lines


def _tex_escape(text: str) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("↓", r"$\downarrow$"), ("–", "--"), ("−", "$-$"), ("Δ", r"$\Delta$"),
                 ("ρ", r"$\rho$"), ("×", r"$\times$"), ("≥", r"$\geq$"), ("·", r"$\cdot$")):
        out = out.replace(a, b)
    return out


def _tables_tex(tab: pd.DataFrame, cols, many_variants: bool, title: str, note: str) -> str:
    """``report.tex``: one booktabs table per (CSNR, CBR), ``\\input``-able into a paper."""
    lines = [f"% {title}: generated by linksim (linksim.reports); needs \\usepackage{{booktabs}}", ""]
    for (csnr, cbr), grp in tab.groupby(["csnr_db", "cbr"], sort=True):
        head = ["Method"] + (["Channel"] if many_variants else []) + [h for _, h in cols]
        lines += [r"\begin{table}[t]", r"\centering", r"\small",
                  r"\begin{tabular}{l" + ("l" if many_variants else "") + "r" * len(cols) + "}", r"\toprule",
                  " & ".join(_tex_escape(h) for h in head) + r" \\", r"\midrule"]
        for _, r in grp.sort_values(["variant", "method"]).iterrows():
            cells = [_fmt(r.get(c, math.nan), _half(r, c), c) for c, _ in cols]
            lead = [r["method"]] + ([r["variant"]] if many_variants else [])
            lines.append(" & ".join(_tex_escape(c) for c in lead + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}",
                  rf"\caption{{{_tex_escape(title)}: CSNR {csnr:g}\,dB, CBR {_cbr_label(cbr)}. {_tex_escape(note)}}}",
                  r"\end{table}", ""]
    return "\n".join(lines)


def make_report(
    run_dir: str | Path,
    strict: bool = False,
    grid_csnrs: list[float] | None = None,
    max_grid_images: int = 4,
    metrics: list[str] | None = None,
    formats: tuple[str, ...] = ("png", "pdf"),
    reference: str | None = None,
) -> list[Path]:
    """Write RD-perception figures, ``report.md`` and ``report.tex`` for a finished (or partial) run.

    :param run_dir: the run's output folder (holds ``results.csv``)
    :param strict: raise :class:`DataError` when there is nothing to report (else log and return [])
    :param grid_csnrs: CSNRs [dB] of the reconstruction grids (default: lowest, middle, highest)
    :param max_grid_images: images (rows) per grid
    :param metrics: figures and tables of these metrics (default: the scenario's ``metrics:``, or
        psnr and ms_ssim); outage is drawn whenever it occurred
    :param formats: figure formats (PNG for viewing, PDF for papers)
    :param reference: method subtracted in the paired-difference tables (default: the first
        method that is not a bound, in the scenario's order)
    :output paths: every file written (figures PNG + PDF, then ``report.md``, ``report.tex``)
    :raises DataError: malformed ``results.csv`` (missing ``method``/``csnr_db``/``cbr`` columns)
    """
    import matplotlib

    matplotlib.use("Agg")
    run_dir = Path(run_dir)
    df, summary, run_info, scenario = _load(run_dir, strict)
    if df is None or df.empty:
        if strict and df is not None:
            raise DataError(run_dir / "results.csv", "no image rows to report (phy-study rows are drawn by the engine)")
        return []
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    methods = sorted(df["method"].unique())
    styles = _Styles(methods, df["variant"].unique(), method_labels(scenario.get("methods"), methods))
    many_variants = df["variant"].nunique() > 1
    ideal = set(df.loc[df["kind"] == "ideal", "method"])
    wanted = _requested_metrics(df, summary, scenario, metrics)
    written: list[Path] = []
    figure_links: list[str] = []

    aggs: dict[str, pd.DataFrame] = {}
    bounds: dict[str, pd.DataFrame | None] = {}
    set_metrics = [m for m in wanted if m in SET_METRIC_LABELS or m not in df]
    for metric in [m for m in wanted if m not in set_metrics] + (
            ["outage"] if "outage" in df and (df["outage"] > 0).any() else []):
        bound = None
        if f"{metric}_bound" in df.columns and df[f"{metric}_bound"].notna().any():
            bound = _aggregate(df.assign(**{metric: df[f"{metric}_bound"]}), metric)
            bound = bound.groupby(["csnr_db", "cbr"], as_index=False)["mean"].mean()
        aggs[metric], bounds[metric] = _aggregate(df, metric), bound
    for metric in set_metrics:
        tab = _table_frame(df, summary, [metric])
        agg = tab[["method", "kind", "variant", "csnr_db", "cbr", metric]].rename(columns={metric: "mean"}).dropna()
        agg["half"], agg["n"] = math.nan, 0  # one value per set: no interval, no band
        aggs[metric], bounds[metric] = agg, None

    def add(fig, name, title):
        nonlocal written
        if fig is None:
            return
        paths = _save(fig, fig_dir / name, formats)
        written += paths
        figure_links.append(f"![{title}](figures/{paths[0].name})")

    curves = 0
    for metric, agg in aggs.items():
        if agg.empty:
            continue
        name = _short(metric)
        for x, panel, tag in (("csnr_db", "cbr", "csnr"), ("cbr", "csnr_db", "cbr")):
            if agg[x].nunique() < 2:
                continue
            title = f"{name} vs {'CSNR' if x == 'csnr_db' else 'CBR'}"
            add(_curve_figure(agg, bounds[metric], metric, x, panel, styles, ideal, title), f"{metric}_vs_{tag}", title)
            curves += 1
    if not curves:  # one point (or one value per axis): bars, so every run has a figure
        for metric, agg in aggs.items():
            if len(agg):
                name = _short(metric)
                add(_bars_figure(agg, metric, styles, name), f"{metric}_bars", name)
    dmetric = next((m for m in DISTORTION if m in aggs and len(aggs[m])), None)
    pmetric = next((m for m in PERCEPTION if m in aggs and len(aggs[m])), None)
    if dmetric and pmetric:
        nfe = _aggregate(df, "nfe") if "nfe" in df and df["nfe"].notna().any() else None
        add(_dp_figure(aggs[dmetric], aggs[pmetric], dmetric, pmetric, nfe, styles, ideal),
            "distortion_perception", "distortion–perception plane")
    # traffic runs: the per-frame columns the scenario's traffic declares (linksim.frames.frame_columns)
    frame_cols, deadline = _declared_frame_columns(scenario, wanted)
    if frame_cols and df["csnr_db"].nunique() > 1:
        curves_of = [c for c in frame_cols if c in df and pd.to_numeric(df[c], errors="coerce").notna().any()]
        if deadline is not None and "deadline_missed" in df:
            curves_of.append("deadline_missed")
        for col in curves_of:
            data = df.assign(**{col: as_bool(df[col]).astype(float)}) if col == "deadline_missed" else df
            agg = _aggregate(data, col)
            title = "deadline-miss ratio vs CSNR" if col == "deadline_missed" else f"{_short(col)} vs CSNR"
            name = "deadline_miss_vs_csnr" if col == "deadline_missed" else f"{col}_vs_csnr"
            add(_curve_figure(agg, None, col, "csnr_db", "cbr", styles, ideal, title), name, title)
    if frame_cols and "latency_s" in df and dmetric:
        in_time = f"{dmetric}{IN_TIME_SUFFIX}"
        qualities = [dmetric] + ([in_time] if in_time in frame_cols and in_time in df else [])
        add(_frontier_figure(df, qualities, styles, ideal, deadline), "quality_vs_latency",
            "quality vs latency (operating frontier)")
    size = (scenario.get("data") or {}).get("size")
    if dmetric and size is not None and "payload_bits" in df:
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        add(_bpp_figure(df, dmetric, h * w, styles), f"{dmetric}_vs_bpp", "quality vs payload bits per pixel")

    grids = _recon_grids(run_dir, df, fig_dir, grid_csnrs, styles, max_grid_images, formats)
    written += grids
    figure_links += [f"![reconstructions](figures/{p.name})" for p in grids if p.suffix == ".png"]

    # tables
    tab = _table_frame(df, summary, wanted)
    cols = _table_columns(tab, wanted)
    order = [m["name"] if isinstance(m, dict) and m.get("name") else m.get("kind") if isinstance(m, dict) else m
             for m in scenario.get("methods") or []]
    candidates = [m for m in order if m in methods and m not in ideal] or [m for m in methods if m not in ideal]
    ref = reference if reference in methods else (candidates[0] if candidates else None)
    diffs = {}
    paired_metric = [m for m in wanted if m in df and m not in SET_METRIC_LABELS][:1]
    if ref is not None and len(methods) > 1:
        for metric in paired_metric:
            d = paired_differences(df[~df["method"].isin(ideal - {ref})], metric, ref, ["variant", "csnr_db", "cbr"])
            if len(d):
                diffs[(metric, "method", ref)] = d
    diffs.update(_axis_differences(df[~df["method"].isin(ideal)], paired_metric, scenario))

    n_img = df["image"].nunique() if "image" in df.columns else "?"
    n_draw = int(df["draw"].nunique()) if "draw" in df.columns and df["draw"].notna().any() else 1
    note = (f"Means ± 95 % Student-t half-widths over n = {n_img} images × {n_draw} channel draw(s) per point; "
            f"figures draw the band only from n ≥ {MIN_BAND_N} samples; FID/KID: one value per set.")
    md = [f"# Report: {run_info.get('name', scenario.get('name', run_dir.name))}", ""]
    md.append(f"{len(methods)} methods, {df['csnr_db'].nunique()} CSNR x {df['cbr'].nunique()} CBR points"
              + (f" x {df['variant'].nunique()} channel variants" if many_variants else "")
              + f", {n_img} images, {n_draw} channel draw(s) per image. {note}")
    if many_variants:
        md.append("Channel variants (swept channel axes): " + ", ".join(sorted(df["variant"].unique())) + ".")
    else:
        md.append(f"Channel: {df['variant'].iloc[0]}.")
    if "outage_rate" in tab and (tab["outage_rate"] > 0).any():
        md.append("Outage: images that were not delivered (source outage or CRC failure, mid-grey fallback) "
                  "count in the means; the 'excl. outage' columns average the delivered images only.")
    md.append("")
    if ideal:
        md += [f"Bounds (dashed, not achievable methods): {', '.join(sorted(ideal))}.", ""]
    sources = run_info.get("metrics") or run_info.get("metric_sources")
    if sources:
        md += ["## Metrics", ""]
        items = sources.items() if isinstance(sources, dict) else enumerate(sources)
        md += [f"- {k}: {v}" if isinstance(k, str) else f"- {v}" for k, v in items]
        md.append("")
    if run_info.get("unavailable_metrics"):
        md += ["## Unavailable metrics (empty cells)", ""]
        md += [f"- {k}: {v}" for k, v in dict(run_info["unavailable_metrics"]).items()]
        md.append("")
    md += ["## Tables", "", *_tables_md(tab, cols, many_variants, diffs), "## Figures", "", *figure_links, ""]
    if grids:
        md += ["Reconstructions are read from `recon/original/<image>.png` and "
               "`recon/<method>/<csnr_db>_<cbr>[,<axis>=<value>...]/<image>.png` (first channel draw).", ""]
    report = run_dir / "report.md"
    atomic_write_text(report, "\n".join(md))
    tex = run_dir / "report.tex"
    atomic_write_text(tex, _tables_tex(tab, cols, many_variants, str(md[0][len("# Report: "):]), note))
    written += [report, tex]
    return written
