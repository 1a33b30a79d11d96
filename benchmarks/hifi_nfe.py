"""HiFi-DiffCom quality against the number of steps: the paper's start scale N x linksim's stride.

The paper's step-count ablation scales the *start*: ``t_start' = int(t_start·N)``, then every
step ``t_start' … 0`` (NFE = ``t_start' + 1``; ``start_scale``). linksim's ``step_scale`` instead
strides over ``t_start' … 0``. Grid: N ∈ {0.05, 0.1, 0.2, 0.5, 1} x step_scale ∈ {1, 0.25}, on
the embedded models (ADJSCC C=2 at CBR 1/48, the embedded DDPM prior), the held-out photos coffee
and chelsea at 64x64 with ``--draws`` channel/noise draws each, over AWGN 10 dB and OFDM 10 dB (8
taps, decay 4, CP 12, one pilot OFDM symbol, LMMSE, MMSE). Published ζ = γ = 0.25, κ = 5; the
guidance step follows the README's rule lr = 1 x stride x sqrt(64²/256²) (0.25 at stride 1,
1.0 at step_scale 0.25). DeepJSCC (the JSCC decode of the same received signal) is the
reference row (NFE 0).

Per configuration: NFE, PSNR, MS-SSIM (means), KID and FID on the Inception network bundled
with linksim (``source`` column; on so few images they are indicative only, biased upwards) and
seconds per image (this CPU). Writes ``benchmarks/results/hifi_nfe.csv`` + ``.md`` and the
quality-vs-NFE frontier ``benchmarks/results/hifi_nfe.png``, and names, per channel, the smallest
NFE within 0.3 dB PSNR of N = 1 (step_scale 1).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/hifi_nfe.py --threads 1
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from linksim.codecs.base import RxSignal
from linksim.codecs.diffusion.hifi import HiFiDiffCom
from linksim.codecs.diffusion.method import load_prior
from linksim.codecs.images import embedded_array, resize_center_crop, to_tensor
from linksim.codecs.jscc.adjscc import load_embedded
from linksim.metrics import build_metrics
from linksim.phy.chains import AnalogChain
from linksim.phy.links import LinkConfig

RESULTS = Path(__file__).parent / "results"
CHANNELS = {
    "awgn": LinkConfig(kind="awgn"),
    "ofdm": LinkConfig(kind="ofdm", paths=8, decay=4.0, cp=12, data_symbols=16, pilot_symbols=1,
                       estimator="lmmse", equalizer="mmse"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start-scales", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.5, 1.0])
    ap.add_argument("--step-scales", type=float, nargs="+", default=[1.0, 0.25])
    ap.add_argument("--csnr", type=float, default=10.0)
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", nargs="+", default=list(CHANNELS))
    ap.add_argument("--fresh", action="store_true", help="ignore an existing hifi_nfe.csv")
    ap.add_argument("--report-only", action="store_true", help="redraw table + figure from hifi_nfe.csv")
    args = ap.parse_args()
    if args.report_only:
        rows = read_rows()
        args.channels = list(dict.fromkeys(r["channel"] for r in rows))
        report(rows, args)
        return
    torch.set_num_threads(args.threads)
    names = ("coffee", "chelsea")
    images = torch.stack([resize_center_crop(to_tensor(embedded_array(n)), args.size, args.size) for n in names])
    images = images.repeat(args.draws, 1, 1, 1)
    jscc, prior = load_embedded("1/48"), load_prior("embedded")
    metrics, unavailable = build_metrics(["psnr", "ms_ssim", "kid", "fid"], "cpu")
    per_image = [m for m in metrics if m.kind == "per_image"]
    per_set = [m for m in metrics if m.kind == "per_set"]
    source = next((getattr(m, "source", "") for m in per_set), "unavailable: " + "; ".join(unavailable.values()))
    # resume: configurations already in hifi_nfe.csv are kept, not re-run (--fresh to start over)
    rows = [] if args.fresh else read_rows()
    done = {(r["channel"], r["receiver"], r["start_scale"], r["step_scale"]) for r in rows}

    def score(label, channel, n, step_scale, nfe, x_hat, seconds):
        row = {"channel": channel, "receiver": label, "start_scale": n, "step_scale": step_scale, "nfe": nfe}
        for m in per_image:
            row[m.name] = float(m(images, x_hat).mean())
        for m in per_set:
            m.reset()
            m.update(images, x_hat)
            row[m.name] = float(m.compute())
        row["inception_source"] = source
        row["s_per_image"] = round(seconds / len(images), 2)
        print(row, flush=True)
        rows.append(row)

    for channel in args.channels:
        cfg = CHANNELS[channel]
        with torch.no_grad():
            x = jscc.encode(images, args.csnr)
        chain = AnalogChain(cfg, x.shape[1])
        y, state = chain(x, 10 ** (-args.csnr / 10), torch.Generator().manual_seed(10))
        rx = RxSignal(y=y, state=state, tx_meta={"tx_scale": None})
        t0 = time.perf_counter()
        with torch.no_grad():
            x_jscc = jscc.decode(y, args.csnr, no_eff=state.no_eff, image_size=(args.size, args.size)).clamp(0, 1)
        if (channel, "deepjscc", None, None) not in done:
            score("deepjscc", channel, None, None, 0, x_jscc, time.perf_counter() - t0)
        for step_scale in args.step_scales:
            for n in args.start_scales:
                if (channel, "hifi_diffcom", n, step_scale) in done:
                    continue
                lr = 1.0 / step_scale * args.size / 256
                r = HiFiDiffCom(prior, jscc, args.csnr, "1/48", (args.size, args.size), lr=lr,
                                start_scale=n, step_scale=step_scale)
                t0 = time.perf_counter()
                d = r.decode(rx, generator=torch.Generator().manual_seed(11))
                score("hifi_diffcom", channel, n, step_scale, d.nfe, d.images, time.perf_counter() - t0)
                write(rows)
    write(rows)
    report(rows, args)


def read_rows() -> list[dict]:
    """Rows of an existing ``hifi_nfe.csv`` (numbers parsed), or none."""
    path = RESULTS / "hifi_nfe.csv"
    if not path.is_file():
        return []
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k, v in r.items():
                if k not in ("channel", "receiver", "inception_source"):
                    r[k] = None if v == "" else (int(v) if k == "nfe" else float(v))
            rows.append(r)
    return rows


def write(rows) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(RESULTS / "hifi_nfe.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def report(rows, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    lines, picks = [], []
    for channel in args.channels:
        ref = [r for r in rows if r["channel"] == channel and r["receiver"] == "deepjscc"][0]
        full = [r for r in rows if r["channel"] == channel and r["start_scale"] == 1.0 and r["step_scale"] == 1.0]
        hifi = [r for r in rows if r["channel"] == channel and r["receiver"] == "hifi_diffcom"]
        if full:
            ok = [r for r in hifi if r["psnr"] >= full[0]["psnr"] - 0.3]
            best = min(ok, key=lambda r: r["nfe"])
            picks.append(f"- {channel}: N = 1 (NFE {full[0]['nfe']}) gives {full[0]['psnr']:.2f} dB; the smallest NFE "
                         f"within 0.3 dB is **{best['nfe']}** (N = {best['start_scale']}, step_scale "
                         f"{best['step_scale']}: {best['psnr']:.2f} dB). DeepJSCC: {ref['psnr']:.2f} dB.")
        for ax, metric in zip(axes, ("psnr", "ms_ssim")):
            for ss, style in zip(args.step_scales, ("o-", "s--", "^:")):
                pts = sorted((r["nfe"], r[metric]) for r in hifi if r["step_scale"] == ss)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style,
                        label=f"{channel}: HiFi, step_scale {ss:g}", color="C0" if channel == "awgn" else "C1")
            ax.axhline(ref[metric], color="C0" if channel == "awgn" else "C1", lw=0.8, ls="-.",
                       label=f"{channel}: DeepJSCC")
    for ax, metric in zip(axes, ("PSNR [dB]", "MS-SSIM")):
        ax.set_xscale("log")
        ax.set_xlabel("NFE (prior evaluations per image)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"HiFi-DiffCom vs NFE: start scale N in {args.start_scales} (points), {args.csnr:g} dB, CBR 1/48, "
                 f"coffee+chelsea 64², embedded models", fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "hifi_nfe.png", dpi=120)
    cols = ["channel", "receiver", "start_scale", "step_scale", "nfe", "psnr", "ms_ssim", "kid", "fid", "s_per_image"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    src = rows[0].get("inception_source", "")
    text = (f"# HiFi-DiffCom quality vs NFE (benchmarks/hifi_nfe.py)\n\n{args.csnr:g} dB, CBR 1/48, coffee + chelsea "
            f"(held out) at {args.size}², {args.draws} draws each ({2 * args.draws} images per "
            f"row), embedded ADJSCC + DDPM prior. KID/FID on the bundled Inception ({src}); on "
            f"{2 * args.draws} images they are indicative only. Seconds per image on this CPU (1 thread).\n\n"
            + "\n".join(picks) + "\n\n" + "\n".join(lines) + "\n\n![quality vs NFE](hifi_nfe.png)\n")
    (RESULTS / "hifi_nfe.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
