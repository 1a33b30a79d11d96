"""Tests of linksim.reports on a small synthetic run folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from linksim.errors import DataError
from linksim.reports import DPI, LEGEND_WIDTH, PANEL_SIZE, make_report, recon_dirname, t_interval

CSNRS = [0.0, 5.0, 10.0]
CBRS = ["1/48", "1/24"]
METHODS = {"deepjscc": "jscc", "hevc_ldpc": "separation"}
IMAGES = ["astronaut", "coffee", "chelsea", "rocket"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    rows = []
    for method, kind in METHODS.items():
        for csnr in CSNRS:
            for cbr in CBRS:
                for img in IMAGES:
                    base = 20 + csnr + (3 if method == "hevc_ldpc" else 0) + 2 * (cbr == "1/24")
                    rows.append(
                        dict(method=method, kind=kind, channel="awgn", csnr_db=csnr, cbr=cbr, image=img,
                             psnr=base + rng.normal(0, 0.5), ms_ssim=0.8 + 0.01 * csnr, lpips=0.3 - 0.01 * csnr,
                             dists=np.nan, outage=0, payload_bits=1000, channel_uses=64, seconds=0.01,
                             seed=0, nfe=np.nan if kind != "jscc" else 1)
                    )
    # a phy-study row that must be ignored
    rows.append(dict(method="phy_ber", kind="phy_ber", channel="awgn", csnr_db=0.0, cbr="1/48", ber=0.1))
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "results.csv", index=False)
    summary = pd.DataFrame(
        [dict(method=m, csnr_db=c, cbr=r, fid=50 - c, kid=0.05 - 0.001 * c) for m in METHODS for c in CSNRS for r in CBRS]
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    (tmp_path / "run.json").write_text(json.dumps({"name": "synthetic", "unavailable_metrics": {"dists": "weights 'vgg16' not available"}}))
    # saved reconstructions at CSNR 10 dB, CBR 1/24, and the originals
    (tmp_path / "recon" / "original").mkdir(parents=True)
    for img in IMAGES[:2]:
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "recon" / "original" / f"{img}.png")
        for method in METHODS:
            d = tmp_path / "recon" / method / recon_dirname(10.0, 1 / 24)
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{img}.png")
    return tmp_path


def test_t_interval_known_value():
    # n = 4, s = 1.2909944 (values 1..4), t_{0.975,3} = 3.182446
    mean, half, n = t_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (mean, n) == (2.5, 4)
    assert half == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)
    assert math.isnan(t_interval(np.array([1.0]))[1])


def test_recon_dirname():
    from linksim.sweep import parse_point_dirname

    # the engine's spelling (linksim.sweep.point_dirname): csnr as in the point key, cbr "a/b" with "-"
    assert recon_dirname(10, 1 / 24) == "10_1-24"
    assert recon_dirname(-2.5, 0.5) == "-2.5_1-2"
    assert parse_point_dirname("-5_0.0208333") == {"csnr_db": "-5", "cbr": "0.0208333"}


@pytest.fixture(scope="module")
def report(run_dir):
    """The full report, made once (matplotlib PNG + PDF output costs seconds on 2 cores)."""
    return make_report(run_dir)


class TestMakeReport:
    def test_every_figure_and_report(self, run_dir, report):
        paths = report
        names = {p.name for p in paths}
        assert "outage_vs_csnr.png" not in names  # no image was in outage: no flat-zero figure
        for metric in ("psnr", "ms_ssim", "lpips", "fid", "kid"):
            for tag in ("csnr", "cbr"):
                assert f"{metric}_vs_{tag}.png" in names and f"{metric}_vs_{tag}.pdf" in names
        assert "dists_vs_csnr.png" not in names  # all empty: no figure, not a made-up curve
        assert "recon_awgn_10dB_cbr1-24.png" in names
        assert "report.md" in names and "report.tex" in names
        assert "distortion_perception.png" in names  # PSNR vs FID per operating point
        for p in paths:
            assert p.stat().st_size > 1000
        # panels: vs CSNR one per CBR (2), vs CBR one per CSNR (3), legend outside on the right;
        # size fixed by PANEL_SIZE, LEGEND_WIDTH x DPI
        for fname, panels in (("psnr_vs_csnr.png", 2), ("psnr_vs_cbr.png", 3)):
            with Image.open(run_dir / "figures" / fname) as im:
                assert im.size == (round((PANEL_SIZE[0] * panels + LEGEND_WIDTH) * DPI), round(PANEL_SIZE[1] * DPI))
                assert np.asarray(im.convert("L")).std() > 10  # not blank

    def test_report_tables(self, run_dir, report):
        text = (run_dir / "report.md").read_text()
        assert "# Report: synthetic" in text
        assert "### CSNR 10 dB, CBR 1/24" in text and "Channel: awgn." in text
        # metrics without values (DISTS) get no column; outage rate, NFE, seconds with real precision, n
        assert ("| method | kind | PSNR [dB] | MS-SSIM | LPIPS (AlexNet) ↓ | FID ↓ | KID ↓ | outage | channel uses | NFE | seconds "
                "| n |") in text
        # hevc_ldpc at 10 dB, 1/24: PSNR mean 20 + 10 + 3 + 2 = 35 (+ noise), FID from summary 40.00
        section = text.split("### CSNR 10 dB, CBR 1/24")[1].split("###")[0]
        line = next(l for l in section.splitlines() if l.startswith("| hevc_ldpc"))
        assert "40.00" in line
        psnr_cell = line.split("|")[3]
        assert abs(float(psnr_cell.split("±")[0]) - 35.0) < 1.0
        assert "dists: weights 'vgg16' not available" in text
        assert "phy_ber" not in text

    def test_ideal_method_is_labelled_bound(self, run_dir, tmp_path):
        df = pd.read_csv(run_dir / "results.csv")
        opta = df[df["method"] == "deepjscc"].assign(method="opta", kind="ideal")
        pd.concat([df, opta]).to_csv(tmp_path / "results.csv", index=False)
        paths = make_report(tmp_path, metrics=["psnr"], formats=("png",))
        assert {p.name for p in paths} == {"psnr_vs_csnr.png", "psnr_vs_cbr.png", "report.md", "report.tex"}
        assert "Bounds (dashed, not achievable methods): opta." in (tmp_path / "report.md").read_text()

    def test_set_metric_on_image_rows(self, run_dir, tmp_path):
        # no summary.csv; FID copied on each image row of its point -> one value, no interval
        df = pd.read_csv(run_dir / "results.csv")
        df["fid"] = 50 - df["csnr_db"]
        df.to_csv(tmp_path / "results.csv", index=False)
        paths = make_report(tmp_path, metrics=["fid"], formats=("png",))
        assert {p.name for p in paths} == {"fid_vs_csnr.png", "fid_vs_cbr.png", "report.md", "report.tex"}
        section = (tmp_path / "report.md").read_text().split("CSNR 5 dB, CBR 1/48")[1]
        line = next(l for l in section.splitlines() if l.startswith("| deepjscc"))
        assert line.split("|")[3].strip() == "45.00"  # only the requested metric: method | kind | FID

    def test_only_phy_rows(self, tmp_path):
        pd.DataFrame([dict(method="ber", kind="phy_ber", channel="awgn", csnr_db=0, cbr=0.5, ber=0.1)]).to_csv(
            tmp_path / "results.csv", index=False
        )
        assert make_report(tmp_path) == []
        with pytest.raises(DataError, match="no image rows"):
            make_report(tmp_path, strict=True)

    def test_study_rows_are_told_by_the_declared_kind_not_by_a_ber_column(self, run_dir, tmp_path):
        """A study row without a ``ber`` value (a BLER-only study) is still a study: reports ask the
        kind's class (``sends_images``), not the columns; image rows stay, whatever else they hold."""
        df = pd.read_csv(run_dir / "results.csv")
        study = pd.DataFrame([dict(method="bler", kind="phy_ber", channel="awgn", csnr_db=0.0, cbr="1/48",
                                   point="csnr_db=0", bler=0.2)])
        pd.concat([df.drop(columns=[c for c in ("ber",) if c in df.columns]), study]).to_csv(
            tmp_path / "results.csv", index=False)
        make_report(tmp_path, metrics=["psnr"], formats=("png",))
        text = (tmp_path / "report.md").read_text()
        assert "| deepjscc" in text and "| bler" not in text

    def test_missing_results(self, tmp_path):
        assert make_report(tmp_path) == []
        with pytest.raises(DataError, match="no results.csv"):
            make_report(tmp_path, strict=True)


@pytest.mark.parametrize("n,bands", [(2, 0), (4, 0), (5, 1)])
def test_bands_only_from_five_samples(n, bands):
    """With few samples the 95 % t band is many standard errors wide (±12.7 for 2) and is not drawn;
    from MIN_BAND_N = 5 it is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from linksim.reports import MIN_BAND_N, _aggregate, _curve_figure, _Styles

    assert MIN_BAND_N == 5
    df = pd.DataFrame([dict(method="m", kind="jscc", channel="awgn", csnr_db=c, cbr=1 / 24, image=f"i{k}", psnr=20 + c + k)
                       for c in (0.0, 10.0) for k in range(n)])
    fig = _curve_figure(_aggregate(df, "psnr"), None, "psnr", "csnr_db", "cbr", _Styles(["m"], ["awgn"]), set(), "t")
    polys = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    plt.close(fig)
    assert len(polys) == bands


def _variant_run(tmp_path):
    """Two HiFi-DiffCom variants (start scales 1 and 0.5) and DeepJSCC over OFDM, estimator swept
    (perfect, ls), 4 images x 2 draws per point; LPIPS and NFE present (the D-P plane is drawn)."""
    import yaml

    methods = [{"name": "deepjscc", "kind": "jscc", "model": "embedded"},
               {"name": "hifi", "kind": "hifi_diffcom", "start_scale": 1.0, "step_scale": 0.25},
               {"name": "hifi_half", "kind": "hifi_diffcom", "start_scale": 0.5, "step_scale": 0.25}]
    rng = np.random.default_rng(1)
    rows, luck = [], {}
    for m in methods:
        for csnr in (0.0, 10.0):
            for est in ("perfect", "ls"):
                for img in IMAGES:
                    for draw in range(2):
                        base = luck.setdefault((csnr, img, draw), rng.normal(20 + csnr, 2))  # shared draw luck
                        # ls costs exactly 1 + 0.25*draw dB at 0 dB, 0.5 dB at 10 dB, for every method
                        cost = (1 + 0.25 * draw if csnr == 0 else 0.5) if est == "ls" else 0.0
                        rows.append(dict(method=m["name"], kind=m["kind"], channel=f"ofdm/{est}", csnr_db=csnr,
                                         cbr="1/24", image=img, draw=draw,
                                         psnr=base - cost + {"deepjscc": 0, "hifi": 0.6, "hifi_half": 0.3}[m["name"]],
                                         lpips=0.4 - 0.01 * csnr + {"deepjscc": 0.08, "hifi": 0, "hifi_half": 0.04}[m["name"]]
                                         + (0.02 if est == "ls" else 0),
                                         nfe=1 if m["kind"] == "jscc" else (60 if m["name"] == "hifi" else 30),
                                         outage=0, **{"channel.estimator": est}))
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(
        {"name": "variants", "metrics": ["psnr", "lpips"], "methods": methods,
         "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"], "channel.estimator": ["perfect", "ls"]}}))
    return pd.DataFrame(rows)


def test_paired_axis_differences_are_tabulated(tmp_path):
    """report.md tabulates ls − perfect per method, paired on (image, draw): the shared luck cancels,
    and mean ± half-width equal an independent computation (t_{0.975, 7} = 2.364624, tables)."""
    _variant_run(tmp_path)
    make_report(tmp_path, formats=("png",))
    md = (tmp_path / "report.md").read_text()
    assert "estimator − perfect per image and draw" in md
    at0 = md.split("### CSNR 0 dB")[1].split("### CSNR")[0]
    table = [line for line in at0.splitlines() if line.startswith("| hifi_half |") and "| ls |" in line]
    diffs = -(1 + 0.25 * np.array([0, 1] * 4))  # 4 images x draws 0, 1
    half = 2.364624 * diffs.std(ddof=1) / np.sqrt(8)
    assert table == [f"| hifi_half | ls | {diffs.mean():.2f} ± {half:.2f} | 8 |"], table
    at10 = md.split("### CSNR 10 dB")[1]
    assert "| deepjscc | ls | -0.50 ± 0.00 | 8 |" in at10  # a constant difference: zero width


def test_distortion_perception_plane_tells_method_variants_apart(tmp_path, monkeypatch):
    import linksim.reports as reports

    _variant_run(tmp_path)
    legends = {}
    save = reports._save

    def spy(fig, path, formats=("png", "pdf")):
        legends[path.name] = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
        return save(fig, path, formats)

    monkeypatch.setattr(reports, "_save", spy)
    make_report(tmp_path, formats=("png",))
    labels = legends["distortion_perception"]
    # one series per (method variant, estimator), each named by the key that differs
    assert "hifi (start_scale=1.0), ofdm/ls" in labels and "hifi_half (start_scale=0.5), ofdm/perfect" in labels
    assert "deepjscc, ofdm/ls" in labels and len(labels) == 6
    assert reports.method_labels([{"name": "a", "kind": "jscc"}, {"name": "b", "kind": "hifi_diffcom"}],
                                 ["a", "b"]) == {"a": "a", "b": "b"}  # nothing to tell apart: plain names


def test_table_shows_channel_uses_mean_and_per_image_range(tmp_path):
    """Methods that spend fewer or per-image varying channel uses (GESCO digital, adaptive lengths)
    are put beside the others with their channel uses: mean, and (min–max) only where it varies."""
    rows = [dict(method="fixed", kind="jscc", channel="awgn", csnr_db=5.0, cbr="1/24", image=f"i{k}", psnr=20.0 + k,
                 channel_uses=256) for k in range(3)]
    rows += [dict(method="adaptive", kind="lrisc", channel="awgn", csnr_db=5.0, cbr="1/24", image=f"i{k}",
                  psnr=21.0 + k, channel_uses=u) for k, u in enumerate([200, 240, 280])]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    make_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    head = next(line for line in md.splitlines() if line.startswith("| method"))
    assert "channel uses" in head.split(" | ")
    col = head.split(" | ").index("channel uses")
    table = md.splitlines()[md.splitlines().index(head) + 2:][:2]  # the two method rows under the header
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ")[col] for line in table}
    assert cells == {"fixed": "256", "adaptive": "240 (200–280)"}
    assert "240 (200--280)" in (tmp_path / "report.tex").read_text()
