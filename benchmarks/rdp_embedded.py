"""Rate-distortion-perception of the embedded models on held-out photos, vs CSNR.

Runs DeepJSCC (the embedded ADJSCC), HiFi-DiffCom (the same ADJSCC + a DDPM prior) and HEVC+LDPC
(separation: HEVC intra + CRC + 5G LDPC, 16-QAM rate 1/2) on embedded photos that neither the
embedded JSCC models nor the embedded prior saw in training (``coffee``, ``chelsea``), over AWGN
(or ``--channel ofdm``), at CBR 1/48 and 1/24 by default. The scenario is built here and run
through the CLI (``linksim run SCENARIO --output DIR``), so the run folder is a standard one
(``results.csv``, ``summary.csv``, ``figures/``, ``report.md``) and can be re-run or re-plotted::

    python benchmarks/rdp_embedded.py                           # prior: embedded, 64 px
    python benchmarks/rdp_embedded.py --prior runs/prior_dev/ddpm --csnr 0,5,10 --threads 1
    python benchmarks/rdp_embedded.py --quick                   # 1 CSNR, 1 CBR, 32 px, short HiFi

Besides the run folder it writes a compact table of means per (method, CBR, CSNR),
``<table-dir>/rdp_embedded.csv`` and ``.md`` (the md states the prior, the images and the metrics
that could not be computed), and ``<table-dir>/rdp_embedded.png`` (PSNR and LPIPS vs CSNR, one
panel per metric, methods as colours, CBRs as line styles). Metrics: PSNR, MS-SSIM, LPIPS, DISTS;
a metric whose weight files are absent stays empty (the engine's rule, DESIGN.md §8) and the
figure then draws the next available one in its panel, saying so. FID/KID need many images and
are only computed with ``--set-metrics``. Re-running resumes finished sweep points (``--fresh``
starts over).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rdp_report import linksim_command  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

#: photos held out from the training of the embedded ADJSCC models and of the embedded prior
HELD_OUT = ("coffee", "chelsea")
DEFAULT_CSNR = (0.0, 5.0, 10.0, 15.0)
DEFAULT_CBR = ("1/48", "1/24")
PER_IMAGE_METRICS = ("psnr", "ms_ssim", "lpips", "dists")
SET_METRICS = ("fid", "kid")
#: --quick: one point, 32 px, HiFi-DiffCom with 5 % of its adaptive number of steps
QUICK = dict(csnr=(5.0,), cbr=("1/24",), size=32, step_scale=0.05)
#: a panel whose metric has no values (weights absent) draws the first of these that has some
FALLBACK_METRICS = ("lpips", "dists", "ms_ssim", "psnr")
TABLE_STEM = "rdp_embedded"
#: options that change how a run is made, not what it computes (left out of the md's command line)
_RUN_ONLY = ("--table-only", "--fresh")
LABELS = {"psnr": "PSNR [dB]", "ms_ssim": "MS-SSIM", "lpips": "LPIPS (lower is better)",
          "dists": "DISTS (lower is better)", "fid": "FID", "kid": "KID"}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_scenario(args: argparse.Namespace) -> dict:
    """The scenario (a YAML-ready dict) of the options in ``args`` (see :func:`parse_args`)."""
    channel = {"kind": args.channel}
    if args.channel == "ofdm":
        # scenario defaults (8 taps, decay 4, CP 12, LMMSE, MMSE) except the frame length: the FFT
        # size is N / data_symbols, and with the default 16 data symbols the N = 128..512 symbols of
        # 32-64 px images give FFTs of 8-32 bins, shorter than (or close to) the 12-sample CP
        channel["data_symbols"] = args.ofdm_data_symbols
    # a prior folder is given absolute so that the saved scenario runs from any working directory
    prior = str(Path(args.prior).expanduser().resolve()) if Path(args.prior).expanduser().exists() else args.prior
    hifi = {"name": "hifi_diffcom", "kind": "hifi_diffcom", "jscc": "deepjscc", "prior": prior,
            "step_scale": args.step_scale, "lr": args.lr}
    methods = [
        {"name": "deepjscc", "kind": "jscc", "model": "embedded"},
        hifi,
        {"name": "hevc_ldpc", "kind": "separation", "codec": "hevc", "modulation": "16qam", "code_rate": 0.5},
    ]
    if args.methods:
        unknown = set(args.methods) - {m["name"] for m in methods}
        if unknown:
            raise SystemExit(f"--methods: unknown {sorted(unknown)}; choose from deepjscc, hifi_diffcom, hevc_ldpc")
        if "hifi_diffcom" in args.methods and "deepjscc" not in args.methods:
            hifi["jscc"] = "embedded"  # same weights as the deepjscc method, without running it
        methods = [m for m in methods if m["name"] in args.methods]
    return {
        "name": TABLE_STEM,
        "seed": args.seed,
        "device": args.device,
        "data": {"source": "embedded", "names": list(args.names), "size": args.size},
        "channel": channel,
        "sweep": {"csnr_db": list(args.csnr), "cbr": list(args.cbr)},
        "methods": methods,
        "metrics": list(PER_IMAGE_METRICS) + (list(SET_METRICS) if args.set_metrics else []),
        "save_images": True,  # for the reconstruction grids of the report
        "output": str(args.output),
    }


def summarize(run_dir: str | Path):
    """Means per (method, CBR, CSNR) of a run folder's ``results.csv`` (+ set metrics of ``summary.csv``).

    :param run_dir: a ``linksim run`` output folder
    :return: ``pandas.DataFrame`` with columns ``method, kind, channel, cbr, csnr_db, images``, the
        per-image metrics (mean over images, empty cells ignored; NaN when no image has a value),
        ``fid``/``kid`` when the run has them, ``outage_rate`` (fraction of images whose payload
        was lost: separation CRC failures), ``payload_bits`` (separation: source bits sent, 0 when
        no bitstream fits the budget), ``nfe`` (prior evaluations per image, diffusion only)
        and ``seconds`` (decode wall time per image). Rows sorted by method (scenario order), CBR
        (numeric), CSNR.
    """
    import pandas as pd

    run_dir = Path(run_dir)
    df = pd.read_csv(run_dir / "results.csv", dtype={"cbr": str})
    keys = ["method", "kind", "channel", "cbr", "csnr_db"]
    value_cols = [c for c in (*PER_IMAGE_METRICS, "payload_bits", "nfe", "seconds") if c in df.columns]
    # outage is True/empty in results.csv: empty means the payload arrived
    df["outage_rate"] = df["outage"].astype(str).str.lower().eq("true").astype(float) if "outage" in df else 0.0
    grouped = df.groupby(keys, sort=False)
    out = grouped[[*value_cols, "outage_rate"]].mean(numeric_only=True).reset_index()
    out.insert(len(keys), "images", grouped.size().to_numpy())
    for col in PER_IMAGE_METRICS:
        if col not in out:
            out[col] = float("nan")
    summary_path = run_dir / "summary.csv"
    if summary_path.exists():
        summary = pd.read_csv(summary_path, dtype={"cbr": str})
        set_cols = [c for c in SET_METRICS if c in summary.columns]
        if set_cols:
            on = ["method", "cbr", "csnr_db"]
            out = out.merge(summary[[*on, *set_cols]], on=on, how="left")
    order = {m: i for i, m in enumerate(df["method"].drop_duplicates())}
    out["_m"] = out["method"].map(order)
    out["_c"] = out["cbr"].map(lambda v: float(Fraction(v)))
    out = out.sort_values(["_m", "_c", "csnr_db"]).drop(columns=["_m", "_c"]).reset_index(drop=True)
    cols = [*keys, "images", *PER_IMAGE_METRICS, *[c for c in SET_METRICS if c in out], "outage_rate",
            *[c for c in ("payload_bits", "nfe", "seconds") if c in out]]
    return out[cols]


def prior_description(spec: str) -> str:
    """One line naming the prior ``spec`` and, for a diffusers folder, how long it was trained."""
    from linksim.codecs.diffusion.loaders import EMBEDDED_PRIOR_DIR

    path = Path(EMBEDDED_PRIOR_DIR) if spec == "embedded" else Path(spec).expanduser()
    text = f"`{spec}`" + (f" ({path})" if spec == "embedded" else "")
    info = path / "training.json" if path.is_dir() else None
    if info is not None and info.is_file():
        meta = json.loads(info.read_text())
        parts = [f"{meta['trained_steps']} training steps" if "trained_steps" in meta else None,
                 f"batch {meta['batch_size']}" if "batch_size" in meta else None,
                 f"final loss {meta['final_loss_mean_100']:.4f}" if "final_loss_mean_100" in meta else None]
        parts = [p for p in parts if p]
        if parts:
            text += ": " + ", ".join(parts)
    return text


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_table(table, table_dir: str | Path, args: argparse.Namespace, run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``rdp_embedded.csv`` (all columns, full precision) and ``rdp_embedded.md``.

    The markdown states the command, the prior, the images, the channel, and the metrics that
    could not be computed (with the reason from ``run.json``); all-empty metric columns are left
    out of its table.
    """
    table_dir = Path(table_dir)
    table_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = table_dir / f"{TABLE_STEM}.csv", table_dir / f"{TABLE_STEM}.md"
    table.to_csv(csv_path, index=False, float_format="%.6g")

    run_info_path = Path(run_dir) / "run.json"
    run_info = json.loads(run_info_path.read_text()) if run_info_path.exists() else {}
    unavailable = run_info.get("unavailable_metrics") or {}
    shown = [c for c in table.columns if c not in ("kind", "channel")
             and not (c in (*PER_IMAGE_METRICS, *SET_METRICS) and table[c].isna().all())]
    digits = {"csnr_db": 1, "psnr": 2, "seconds": 2, "nfe": 0, "payload_bits": 0, "outage_rate": 2}
    command = " ".join(["python benchmarks/rdp_embedded.py", *(a for a in args.argv if a not in _RUN_ONLY)])
    lines = [
        "# Rate-distortion-perception of the embedded models on held-out photos",
        "",
        f"Generated by `{command}`.",
        "",
        f"- prior (HiFi-DiffCom): {prior_description(args.prior)}",
        f"- HiFi-DiffCom step_scale: {args.step_scale} (fraction of its adaptive t_start+1 steps), lr {args.lr:g}",
        f"- images: {', '.join(args.names)} (held out from the JSCC and prior training), {args.size} px centre crops",
        f"- channel: {args.channel}"
        + (f" (8-tap exponential PDP, LMMSE + MMSE, {args.ofdm_data_symbols} data symbols per frame)"
           if args.channel == "ofdm" else "")
        + f"; CBR {', '.join(args.cbr)}; CSNR {', '.join(_fmt(c, 1) for c in args.csnr)} dB; "
        f"seed {args.seed}; device {run_info.get('device', args.device)}",
        "- methods: deepjscc = embedded ADJSCC; hifi_diffcom = the same ADJSCC + DDPM prior; "
        "hevc_ldpc = HEVC intra + CRC + 5G LDPC, 16-QAM rate 1/2 (outage: CRC failed, grey fallback image)",
        f"- values: means over images; run folder (report.md, figures, per-image rows): `{run_dir}`",
    ]
    if args.prior != "embedded":
        lines.append("- NOTE: this prior is not the shipped `prior: embedded`; re-run without `--prior` for the "
                     "numbers of the embedded model")
    if "payload_bits" in table:
        starved = table[table["kind"].eq("separation") & table["payload_bits"].eq(0)]
        for method in dict.fromkeys(starved["method"]):
            cbrs = ", ".join(dict.fromkeys(starved.loc[starved["method"] == method, "cbr"]))
            lines.append(f"- `{method}` at CBR {cbrs}: no source bitstream fits the bit budget at this image size "
                         f"(payload 0 bits), so every CSNR gives the fallback image")
    for name, reason in unavailable.items():
        lines.append(f"- `{name}` not computed: {reason.split(';')[0]}")
    lines += ["", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table[shown].itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, digits.get(c, 3)) for c, v in zip(shown, row)) + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def plot_table(table, path: str | Path, metrics: list[str] | tuple[str, ...] = ("psnr", "lpips"),
               title: str | None = None) -> Path:
    """Metric vs CSNR, one panel per metric, methods as colours, CBRs as line styles.

    A requested metric without values (its weights are absent) is replaced in its panel by the
    first of :data:`FALLBACK_METRICS` that has values and is not drawn already; the panel title says so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has = {c for c in table.columns if c in LABELS and table[c].notna().any()}
    panels, used = [], set()
    for m in metrics:
        if m in has:
            panels.append((m, None))
            used.add(m)
            continue
        alt = next((f for f in FALLBACK_METRICS if f in has and f not in used and f not in metrics), None)
        if alt is not None:
            panels.append((alt, m))
            used.add(alt)
    methods = list(dict.fromkeys(table["method"]))
    cbrs = sorted(set(table["cbr"]), key=lambda v: float(Fraction(v)))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (metric, missing) in zip(axes[0], panels):
        for i, method in enumerate(methods):
            for j, cbr in enumerate(cbrs):
                sel = table[(table["method"] == method) & (table["cbr"] == cbr)].sort_values("csnr_db")
                if sel.empty or sel[metric].isna().all():
                    continue
                ax.plot(sel["csnr_db"], sel[metric], color=f"C{i}", linestyle=styles[j % len(styles)],
                        marker=markers[i % len(markers)], label=f"{method}, CBR {cbr}")
        panel_title = LABELS.get(metric, metric)
        if missing is not None:
            panel_title += f"\n({missing} unavailable: weights absent)"
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("CSNR [dB]")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csnr", type=_floats, default=None, help="CSNRs [dB], comma-separated (default 0,5,10,15)")
    p.add_argument("--cbr", type=_words, default=None, help="CBRs, comma-separated 'a/b' (default 1/48,1/24)")
    p.add_argument("--size", type=int, default=None, help="centre-crop side [px], multiple of 4 (default 64)")
    p.add_argument("--names", type=_words, default=list(HELD_OUT), help="embedded images (default coffee,chelsea)")
    p.add_argument("--prior", default="embedded", help="HiFi-DiffCom prior: embedded, a diffusers folder or a name")
    p.add_argument("--step-scale", type=float, default=None, help="HiFi-DiffCom step_scale (default 1; --quick 0.05)")
    p.add_argument("--lr", type=float, default=None,
                   help="HiFi-DiffCom guidance step (default: the published 1 x stride x sqrt(H·W/256²), "
                        "the rule of scenarios/fading_ofdm.yaml)")
    p.add_argument("--channel", choices=("awgn", "ofdm"), default="awgn", help="channel (ofdm: scenario defaults)")
    p.add_argument("--ofdm-data-symbols", type=int, default=4,
                   help="ofdm: data OFDM symbols per frame (FFT size = N / this; default 4)")
    p.add_argument("--methods", type=_words, default=None, help="subset of deepjscc,hifi_diffcom,hevc_ldpc")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set-metrics", action="store_true", help="also FID and KID (meaningful with many images only)")
    p.add_argument("--quick", action="store_true", help="1 CSNR (5 dB), CBR 1/24, 32 px, step_scale 0.05")
    p.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads of the run (default: torch's)")
    p.add_argument("--output", type=Path, default=Path("results") / TABLE_STEM, help="run folder")
    p.add_argument("--table-dir", type=Path, default=here / "results", help="where rdp_embedded.{csv,md,png} go")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming finished points")
    p.add_argument("--table-only", action="store_true",
                   help="only (re)make table and figures of an existing run (give the run's options again)")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    for key, default in (("csnr", list(DEFAULT_CSNR)), ("cbr", list(DEFAULT_CBR)), ("size", 64), ("step_scale", 1.0)):
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else default)
    if args.lr is None:
        args.lr = round((1.0 / args.step_scale) * (args.size / 256), 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        scn_path = args.output / "scenario.input.yaml"
        scn_path.write_text(yaml.safe_dump(build_scenario(args), sort_keys=False))
        cmd = [*linksim_command(), "run", str(scn_path), "--output", str(args.output), "--no-figures"]
        if args.fresh:
            cmd.append("--fresh")
        env = dict(os.environ)
        if args.threads is not None:
            # torch's intra-op pool follows OMP_NUM_THREADS at start-up
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
        print("+", " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            return rc

    from linksim.reports import make_report

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    make_report(args.output, strict=True)
    table = summarize(args.output)
    csv_path, md_path = write_table(table, args.table_dir, args, args.output)
    title = (f"{', '.join(args.names)} ({args.size} px), {args.channel}; HiFi-DiffCom prior "
             f"{args.prior if len(args.prior) <= 40 else '…' + args.prior[-39:]}, step_scale {args.step_scale:g}")
    png = plot_table(table, args.table_dir / f"{TABLE_STEM}.png", title=title)
    print(f"report: {args.output / 'report.md'}; table: {csv_path}, {md_path}; figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
