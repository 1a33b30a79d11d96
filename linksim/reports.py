"""Rate-distortion-perception reports from a run folder (DESIGN.md §5).

:func:`make_report` reads ``results.csv`` (one row per image x method x sweep point) and, if present,
``summary.csv`` (set metrics such as FID and KID per method x sweep point) and ``run.json``, and writes

- ``figures/<metric>_vs_csnr.{png,pdf}``: one panel per CBR, one line per method, mean with a 95 %
  Student-t interval over images (shaded);
- ``figures/<metric>_vs_cbr.{png,pdf}``: one panel per CSNR, CBR on a log2 axis;
- ``figures/recon_<channel>_<csnr>dB_cbr<cbr>.{png,pdf}`` (e.g. ``recon_awgn_10dB_cbr1-24.png``): reconstruction grids (original | each
  method) when the run saved images;
- ``report.md``: tables like the comparison tables of papers, one per (channel, CSNR, CBR).

Bounds: a method of kind ``ideal`` and any column ``<metric>_bound`` are drawn dashed and labelled as
bounds, never as achievable methods.

Saved images (written by the engine with ``save_images: true``)::

    recon/original/<image>.png                       the reference images, once per run
    recon/<method>/<csnr_db>_<cbr>/<image>.png       with the folder name from :func:`recon_dirname`

Rows of phy-only studies (a ``ber`` column with values) are not image results and are skipped here;
the engine draws their BER figure.
"""

from __future__ import annotations

import json
import logging
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from linksim.errors import DataError
from linksim.store import atomic_path, atomic_write_text

__all__ = ["METRIC_LABELS", "make_report", "recon_dirname", "t_interval"]

log = logging.getLogger(__name__)

#: column -> (axis label with unit, higher is better)
METRIC_LABELS: dict[str, tuple[str, bool]] = {
    "psnr": ("PSNR [dB]", True),
    "ms_ssim": ("MS-SSIM", True),
    "lpips": ("LPIPS (AlexNet)", False),
    "lpips_vgg": ("LPIPS (VGG16)", False),
    "dists": ("DISTS", False),
    "outage": ("outage probability", False),
}
SET_METRIC_LABELS: dict[str, tuple[str, bool]] = {"fid": ("FID", False), "kid": ("KID", False)}
TABLE_COLUMNS = [
    ("psnr", "PSNR [dB]"),
    ("ms_ssim", "MS-SSIM"),
    ("lpips", "LPIPS ↓"),
    ("dists", "DISTS ↓"),
    ("fid", "FID ↓"),
    ("kid", "KID ↓"),
    ("nfe", "NFE"),
    ("seconds", "seconds"),
]
PANEL_SIZE = (3.2, 2.6)  # inches per panel
DPI = 150
GROUP_KEYS = ["method", "kind", "channel", "csnr_db", "cbr"]


def recon_dirname(csnr_db: float, cbr: float) -> str:
    """Folder of one sweep point's saved reconstructions: ``f"{csnr_db:g}_{cbr:.6g}"``, e.g. ``10_0.0208333``."""
    return f"{float(csnr_db):g}_{float(cbr):.6g}"


def _parse_recon_dirname(name: str) -> tuple[float, float] | None:
    """``(csnr_db, cbr)`` from ``10_0.0416667``, ``10.0_1-24`` or ``10dB_1over24``; None otherwise."""
    m = re.fullmatch(r"(-?\d+(?:\.\d*)?)(?:dB)?_(\d+)(?:-|over|÷)(\d+)", name)
    if m:
        return float(m.group(1)), int(m.group(2)) / int(m.group(3))
    m = re.fullmatch(r"(-?\d+(?:\.\d*)?)(?:dB)?_(\d*\.?\d+(?:[eE][+-]?\d+)?)", name)
    if m:
        return float(m.group(1)), float(m.group(2))
    return None


#: fewest images per point for which a figure draws the 95 % band
MIN_BAND_N = 3


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
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


def _cbr_value(v) -> float:
    if isinstance(v, str) and "/" in v:
        return float(Fraction(v.strip()))
    return float(v)


def _cbr_label(cbr: float) -> str:
    frac = Fraction(cbr).limit_denominator(4096)
    if frac.numerator == 1 and abs(float(frac) - cbr) < 1e-9 * max(1.0, cbr):
        return f"1/{frac.denominator}"
    return f"{cbr:.4g}"


def _load(run_dir: Path, strict: bool) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict]:
    results_path = run_dir / "results.csv"
    if not results_path.is_file():
        if strict:
            raise DataError(results_path, "no results.csv: run `linksim run` first")
        log.warning("%s: no results.csv, nothing to report", results_path)
        return None, None, {}
    df = pd.read_csv(results_path)
    if "ber" in df.columns:  # phy studies: BER rows are drawn by the engine, not here
        df = df[df["ber"].isna()]
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
    summary = None
    if (run_dir / "summary.csv").is_file():
        summary = pd.read_csv(run_dir / "summary.csv")
        if {"method", "csnr_db", "cbr"} <= set(summary.columns):
            summary = summary.copy()
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
    return df, summary, run_info


def _present(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in cols if c in df.columns and pd.to_numeric(df[c], errors="coerce").notna().any()]


def _aggregate(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, 95 % half-width and n per method x channel x CSNR x CBR."""
    rows = []
    for key, grp in df.groupby(GROUP_KEYS, sort=True):
        mean, half, n = t_interval(pd.to_numeric(grp[metric], errors="coerce").to_numpy())
        if n:
            rows.append(dict(zip(GROUP_KEYS, key), mean=mean, half=half, n=n))
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "mean", "half", "n"])


def _colours(methods: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(methods))}


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


def _curve_figure(
    agg: pd.DataFrame,
    bounds: pd.DataFrame | None,
    label: str,
    x: str,
    panel: str,
    colours: dict,
    ideal: set[str],
    title: str,
):
    """One panel per value of ``panel``; x-axis ``x`` (csnr_db or cbr)."""
    import matplotlib.pyplot as plt

    panels = sorted(agg[panel].unique())
    fig, axes = plt.subplots(
        1, len(panels), figsize=(PANEL_SIZE[0] * len(panels), PANEL_SIZE[1]), squeeze=False, layout="constrained"
    )
    # y-range from the means (and bounds): with few images a 95 % t-interval can be many times the
    # spread of the curves (t = 12.7 for 2 images) and would flatten every line; bands are clipped.
    lines = [agg["mean"]] + ([bounds["mean"]] if bounds is not None and len(bounds) else [])
    finite = pd.concat(lines).replace([np.inf, -np.inf], np.nan).dropna()
    ylim = None
    if len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.12 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.05)
        ylim = (lo - pad, hi + pad)
    for ax, pv in zip(axes[0], panels):
        sub = agg[agg[panel] == pv]
        for method, grp in sub.groupby("method", sort=True):
            grp = grp.sort_values(x)
            xs, ys, hs = grp[x].to_numpy(), grp["mean"].to_numpy(), grp["half"].to_numpy()
            if method in ideal:
                ax.plot(xs, ys, "--", color="0.2", lw=1.2, label=f"{method} (bound)")
                continue
            ax.plot(xs, ys, "-o", ms=3, lw=1.4, color=colours[method], label=method)
            # with 2 images the 95 % band is ±12.7 standard errors: drawn for every method it greys
            # out the whole panel and says nothing; the report tables keep the ± values
            ok = np.isfinite(hs) & (grp["n"].to_numpy() >= MIN_BAND_N)
            if ok.any():
                ax.fill_between(xs[ok], (ys - hs)[ok], (ys + hs)[ok], color=colours[method], alpha=0.2, lw=0)
        if bounds is not None and len(bounds):
            bsub = bounds[bounds[panel] == pv].sort_values(x)
            if len(bsub):
                ax.plot(bsub[x], bsub["mean"], ":", color="k", lw=1.2, label="bound")
        if x == "cbr":
            ax.set_xscale("log", base=2)
            ticks = sorted(sub[x].unique())
            ax.set_xticks(ticks, [_cbr_label(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("CBR ρ [channel uses / pixel·channel]")
            ax.set_title(f"CSNR = {pv:g} dB", fontsize=9)
        else:
            ax.set_xlabel("CSNR [dB]")
            ax.set_title(f"CBR = {_cbr_label(pv)}", fontsize=9)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return fig


def _recon_grids(run_dir: Path, df: pd.DataFrame, fig_dir: Path, csnrs, colours, max_images: int, formats) -> list[Path]:
    """Grids original | each method, per channel and chosen sweep point, from saved PNGs."""
    import matplotlib.pyplot as plt
    from PIL import Image

    recon = run_dir / "recon"
    if not (recon / "original").is_dir():
        return []
    # folder name -> (csnr, cbr) per method, parsed leniently
    dirs: dict[str, dict[tuple[float, float], Path]] = {}
    for mdir in sorted(p for p in recon.iterdir() if p.is_dir() and p.name != "original"):
        for pdir in mdir.iterdir():
            parsed = _parse_recon_dirname(pdir.name) if pdir.is_dir() else None
            if parsed:
                dirs.setdefault(mdir.name, {})[parsed] = pdir

    def find(method, csnr, cbr):
        for (c, r), p in dirs.get(method, {}).items():
            if abs(c - csnr) < 1e-6 and abs(r - cbr) <= 1e-4 * cbr:
                return p
        return None

    out = []
    all_csnr = sorted(df["csnr_db"].unique())
    if csnrs is None:  # lowest, middle, highest CSNR of the sweep
        csnrs = sorted({all_csnr[0], all_csnr[len(all_csnr) // 2], all_csnr[-1]})
    for (channel, csnr, cbr), grp in df.groupby(["channel", "csnr_db", "cbr"], sort=True):
        if not any(abs(csnr - c) < 1e-6 for c in csnrs):
            continue
        methods = [m for m in sorted(grp["method"].unique()) if find(m, csnr, cbr) is not None]
        images = [i for i in dict.fromkeys(grp["image"].astype(str)) if (recon / "original" / f"{i}.png").is_file()]
        images = images[:max_images]
        if not methods or not images:
            continue
        cols = ["original", *methods]
        fig, axes = plt.subplots(
            len(images), len(cols), figsize=(1.6 * len(cols), 1.6 * len(images) + 0.3), squeeze=False, layout="constrained"
        )
        for r, img in enumerate(images):
            for c, col in enumerate(cols):
                ax = axes[r][c]
                path = recon / "original" / f"{img}.png" if col == "original" else find(col, csnr, cbr) / f"{img}.png"
                if path.is_file():
                    ax.imshow(np.asarray(Image.open(path).convert("RGB")))
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(col, fontsize=8, color="k" if col == "original" else colours.get(col, "k"))
                if c == 0:
                    ax.set_ylabel(img, fontsize=7)
        fig.suptitle(f"{channel}  CSNR = {csnr:g} dB  CBR = {_cbr_label(cbr)}", fontsize=9)
        # channel labels such as "ofdm/lmmse" hold a "/", which is no file name character
        name = f"recon_{(channel or 'channel').replace('/', '-')}_{csnr:g}dB_cbr{_cbr_label(cbr).replace('/', '-')}"
        out += _save(fig, fig_dir / name, formats)
    return out


def _fmt(mean: float, half: float, col: str) -> str:
    if not np.isfinite(mean):
        return "–"
    digits = {"psnr": 2, "ms_ssim": 4, "lpips": 4, "dists": 4, "fid": 2, "kid": 4, "nfe": 0, "seconds": 3}.get(col, 3)
    s = f"{mean:.{digits}f}"
    if np.isfinite(half) and col not in ("nfe",):
        s += f" ± {half:.{digits}f}"
    return s


def _tables(df: pd.DataFrame, summary: pd.DataFrame | None) -> list[str]:
    lines = []
    for (channel, csnr, cbr), grp in df.groupby(["channel", "csnr_db", "cbr"], sort=True):
        lines += [f"### {channel or 'channel'} — CSNR {csnr:g} dB, CBR {_cbr_label(cbr)}", ""]
        lines.append("| method | kind | " + " | ".join(h for _, h in TABLE_COLUMNS) + " |")
        lines.append("|---|---|" + "---:|" * len(TABLE_COLUMNS))
        for method, mg in grp.groupby("method", sort=True):
            cells = []
            for col, _ in TABLE_COLUMNS:
                if col in mg.columns and col not in SET_METRIC_LABELS:
                    mean, half, _n = t_interval(pd.to_numeric(mg[col], errors="coerce").to_numpy())
                elif summary is not None and col in summary.columns:
                    s = summary[
                        (summary["method"] == method)
                        & np.isclose(summary["csnr_db"], csnr)
                        & np.isclose(summary["cbr"], cbr)
                    ]
                    vals = pd.to_numeric(s[col], errors="coerce").dropna()
                    mean, half = (float(vals.iloc[0]), math.nan) if len(vals) else (math.nan, math.nan)
                else:
                    mean, half = math.nan, math.nan
                cells.append(_fmt(mean, half, col))
            kind = mg["kind"].iloc[0]
            lines.append(f"| {method} | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def make_report(
    run_dir: str | Path,
    strict: bool = False,
    grid_csnrs: list[float] | None = None,
    max_grid_images: int = 4,
    metrics: list[str] | None = None,
    formats: tuple[str, ...] = ("png", "pdf"),
) -> list[Path]:
    """Write RD-perception figures and ``report.md`` for a finished (or partial) run.

    :param run_dir: the run's output folder (holds ``results.csv``)
    :param strict: raise :class:`DataError` when there is nothing to report (else log and return [])
    :param grid_csnrs: CSNRs [dB] of the reconstruction grids (default: lowest, middle, highest)
    :param max_grid_images: images (rows) per grid
    :param metrics: draw only these metric columns (default: every metric column with values)
    :param formats: figure formats (PNG for viewing, PDF for papers)
    :output paths: every file written (figures PNG + PDF, then ``report.md``)
    :raises DataError: malformed ``results.csv`` (missing ``method``/``csnr_db``/``cbr`` columns)
    """
    import matplotlib

    matplotlib.use("Agg")
    run_dir = Path(run_dir)
    df, summary, run_info = _load(run_dir, strict)
    if df is None or df.empty:
        if strict and df is not None:
            raise DataError(run_dir / "results.csv", "no image rows to report (phy-study rows are drawn by the engine)")
        return []
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    methods = sorted(df["method"].unique())
    colours = _colours(methods)
    ideal = set(df.loc[df["kind"] == "ideal", "method"])
    written: list[Path] = []
    figure_links: list[str] = []

    curves: list[tuple[str, str, pd.DataFrame, pd.DataFrame | None]] = []
    for metric in _present(df, METRIC_LABELS):
        bound = None
        if f"{metric}_bound" in df.columns and df[f"{metric}_bound"].notna().any():
            bound = _aggregate(df.assign(**{metric: df[f"{metric}_bound"]}), metric)
            bound = bound.groupby(["csnr_db", "cbr"], as_index=False)["mean"].mean()
        curves.append((metric, METRIC_LABELS[metric][0], _aggregate(df, metric), bound))
    set_cols = [c for c in SET_METRIC_LABELS if c in df.columns and (summary is None or c not in summary.columns)]
    if set_cols:  # the engine may copy per-set values onto every image row of the point
        extra = df.groupby(["method", "csnr_db", "cbr"], as_index=False)[set_cols].first()
        summary = extra if summary is None else summary.merge(extra, on=["method", "csnr_db", "cbr"], how="outer")
    if summary is not None:
        for metric in _present(summary, SET_METRIC_LABELS):
            agg = summary[["method", "csnr_db", "cbr", metric]].rename(columns={metric: "mean"}).dropna()
            agg = agg.merge(df[GROUP_KEYS].drop_duplicates(), on=["method", "csnr_db", "cbr"], how="left")
            agg["half"], agg["n"] = math.nan, 0  # one value per set: no interval, no band
            curves.append((metric, SET_METRIC_LABELS[metric][0], agg, None))

    if metrics is not None:
        curves = [c for c in curves if c[0] in metrics]
    for metric, label, agg, bound in curves:
        arrow = "↑" if (METRIC_LABELS | SET_METRIC_LABELS)[metric][1] else "↓"
        for channel, cagg in agg.groupby("channel", sort=True):
            suffix = f"_{channel}" if agg["channel"].nunique() > 1 else ""
            for x, panel, tag in (("csnr_db", "cbr", "csnr"), ("cbr", "csnr_db", "cbr")):
                if cagg[x].nunique() < 2:
                    continue
                title = f"{label} {arrow} vs {'CSNR' if x == 'csnr_db' else 'CBR'} — {channel or 'channel'}"
                fig = _curve_figure(cagg, bound, f"{label} {arrow}", x, panel, colours, ideal, title)
                paths = _save(fig, fig_dir / f"{metric}_vs_{tag}{suffix}", formats)
                written += paths
                figure_links.append(f"![{title}](figures/{paths[0].name})")

    grids = _recon_grids(run_dir, df, fig_dir, grid_csnrs, colours, max_grid_images, formats)
    written += grids
    figure_links += [f"![reconstructions](figures/{p.name})" for p in grids if p.suffix == ".png"]

    md = [f"# Report: {run_info.get('name', run_dir.name)}", ""]
    n_img = df["image"].nunique() if "image" in df.columns else "?"
    md.append(
        f"{len(methods)} methods, {df['csnr_db'].nunique()} CSNR x {df['cbr'].nunique()} CBR points, "
        f"{n_img} images. Means ± 95 % Student-t half-widths over images (figures draw the band from "
        f"{MIN_BAND_N} images on); FID/KID per set (summary.csv)."
    )
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
    md += ["## Tables", "", *_tables(df, summary), "## Figures", "", *figure_links, ""]
    if grids:
        md += ["Reconstructions are read from `recon/original/<image>.png` and "
               "`recon/<method>/<csnr_db>_<cbr>/<image>.png`.", ""]
    report = run_dir / "report.md"
    atomic_write_text(report, "\n".join(md))
    written.append(report)
    return written
