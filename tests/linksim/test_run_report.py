"""A run of an image scenario end to end: metrics built once, run.json records, strict metrics, report."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch

from linksim.cli import main
from linksim.configs import DEFAULT_METRICS
from linksim.runner import run_scenario
from linksim.errors import WeightsUnavailable
from linksim.metrics import MetricUnavailableWarning, PerImageMetric, SetMetric
from linksim.registry import METRICS
from linksim.scenario import scenario_from_dict

MISSING = "/nowhere/linksim-test/fake_net-0123abcd.pth"
BUILT: list[str] = []  # factory calls, by metric name


class RefMean(PerImageMetric):
    """Mean of the *first* argument per image: equals the reference's mean iff called reference first."""

    name = "ref_mean"
    source = "test fake"

    def compute_batch(self, x, y):
        return x.mean(dim=(1, 2, 3))


class CountSet(SetMetric):
    """Stands in for FID: the number of fake images seen since the last reset (3 per point iff reset
    between points)."""

    name = "fid"
    source = "test fake"
    higher_is_better = False

    def __init__(self, device="cpu"):
        super().__init__(device)
        self.n = 0

    def update(self, real, fake):
        self.n += fake.shape[0]

    def compute(self):
        return torch.tensor(float(self.n), dtype=torch.float64)

    def extra(self):
        return {"fid_images": float(self.n)}

    def reset(self):
        self.n = 0


def _factory(cls):
    def factory(device="cpu", allow_download=None):
        BUILT.append(cls.name)
        return cls(device)

    return factory


def _missing(device="cpu", allow_download=None):
    BUILT.append("fake_missing")
    raise WeightsUnavailable("fake_net", MISSING, "download it and put it in /nowhere/linksim-test/")


@pytest.fixture
def fake_metrics(fake_methods, monkeypatch):
    from linksim.registry import Entry

    # the fake set metric replaces FID for the test (no Inception weights needed)
    monkeypatch.setitem(METRICS._entries, "fid", Entry("fid", _factory(CountSet), None, "test fake"))
    entries = {"ref_mean": _factory(RefMean), "fake_missing": _missing}
    for name, factory in entries.items():
        METRICS.add(name, factory, None, "test fake")
    BUILT.clear()
    yield BUILT
    for name in entries:
        METRICS.remove(name)


def _scenario(tmp_path, **over) -> dict:
    raw = {
        "name": "img_report", "seed": 3, "device": "cpu",
        "data": {"source": "embedded", "size": 32, "limit": 3},
        "channel": {"kind": "awgn"},
        "sweep": {"csnr_db": [0, 20], "cbr": [1]},
        "methods": [{"name": "ident", "kind": "fake_image"}, {"name": "ident2", "kind": "fake_image"}],
        "metrics": ["psnr", "ref_mean", "fid", "fake_missing"],
        "save_images": True,
    }
    raw.update(over)
    return raw


def _write(tmp_path, raw) -> str:
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_cli_run_writes_report_originals_and_metric_records(fake_metrics, tmp_path):
    out = tmp_path / "out"
    file = _write(tmp_path, _scenario(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["run", file, "--output", str(out)]) == 0
    # 2 methods x 2 points = 4 jobs, but every metric factory ran once for the whole run
    assert sorted(fake_metrics) == ["fake_missing", "fid", "ref_mean"]
    unavailable_warnings = [w for w in caught if issubclass(w.category, MetricUnavailableWarning)]
    assert len(unavailable_warnings) == 1 and "fake_missing" in str(unavailable_warnings[0].message)

    run = json.loads((out / "run.json").read_text())
    assert set(run["metrics"]) == {"psnr", "ref_mean", "fid"}
    assert run["metrics"]["ref_mean"] == "ref_mean (higher is better): test fake"
    assert set(run["unavailable_metrics"]) == {"fake_missing"} and MISSING in run["unavailable_metrics"]["fake_missing"]

    df = pd.read_csv(out / "results.csv")
    assert len(df) == 2 * 2 * 3 and df["fake_missing"].isna().all()
    # reference first: ref_mean is the mean of the original image (0 dB noise + clipping moves x_hat's mean)
    from linksim.data import load_images

    ref = load_images(scenario_from_dict(_scenario(tmp_path)).data)
    means = dict(zip(ref.names, ref.images.mean(dim=(1, 2, 3)).tolist()))
    for _, r in df.iterrows():
        assert r.ref_mean == pytest.approx(means[r.image], abs=1e-6)
    # set metric reset per (method, point): 3 images each, not a running count (3, 6, 9, 12)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
    assert summary["fid"].tolist() == [3.0] * 4 and summary["fid_images"].tolist() == [3.0] * 4
    assert "fid_ci95" not in summary.columns

    originals = sorted(p.name for p in (out / "recon" / "original").glob("*.png"))
    assert originals == sorted(f"{n}.png" for n in ref.names)
    assert len(list((out / "recon" / "ident").rglob("*.png"))) == 2 * 3
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"psnr_vs_csnr.png", "fid_vs_csnr.png"} <= figures
    assert sum(n.startswith("recon_") for n in figures) == 2  # one grid per CSNR (lowest, highest)
    report = (out / "report.md").read_text()
    assert "| ident |" in report and "| ident2 |" in report and "| 3.00 |" in report  # the FID column
    assert "fake_missing" in report.split("## Unavailable metrics")[1]
    assert "![reconstructions](figures/recon_" in report

    # `linksim plot` makes them again
    (out / "report.md").unlink()
    for p in (out / "figures").iterdir():
        p.unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert {p.name for p in (out / "figures").glob("*.png")} == figures


def test_strict_metrics_fails_before_any_work(fake_metrics, tmp_path, capsys):
    out = tmp_path / "out"
    file = _write(tmp_path, _scenario(tmp_path))
    assert main(["run", file, "--output", str(out), "--strict-metrics"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and MISSING in err[0] and "put it in /nowhere/linksim-test/" in err[0]
    assert not out.exists()  # nothing was written or run
    # the same scenario without the missing metric runs under --strict-metrics
    ok = _scenario(tmp_path, metrics=["ref_mean"], sweep={"csnr_db": [10], "cbr": [1]}, save_images=False)
    assert main(["run", _write(tmp_path, ok), "--output", str(out), "--strict-metrics", "--no-figures"]) == 0
    assert pd.read_csv(out / "results.csv")["ref_mean"].notna().all()


def test_default_metrics_are_psnr_and_ms_ssim_only(fake_metrics, tmp_path):
    raw = _scenario(tmp_path, metrics=[], sweep={"csnr_db": [10], "cbr": [1]}, save_images=False,
                    methods=[{"name": "ident", "kind": "fake_image"}])
    out = run_scenario(scenario_from_dict(raw), output=tmp_path / "out")
    assert DEFAULT_METRICS == ("psnr", "ms_ssim")
    assert fake_metrics == []  # nothing else was built
    run = json.loads((out / "run.json").read_text())
    assert set(run["metrics"]) == {"psnr", "ms_ssim"} and run["unavailable_metrics"] == {}
    df = pd.read_csv(out / "results.csv")
    assert df["psnr"].notna().all() and df["ms_ssim"].between(0, 1).all() and df["lpips"].isna().all()


def test_worker_builds_metrics_once_per_run(fake_metrics, tmp_path):
    """The process/Ray worker entry point reuses its metric objects across the jobs it serves."""
    from linksim.executors import _run_job_remote
    from linksim.sweep import jobs

    scn = scenario_from_dict(_scenario(tmp_path, metrics=["fid"], save_images=False))
    data = scn.model_dump(mode="python")
    data["sweep"] = {k: [str(v) for v in vals] if k == "cbr" else vals for k, vals in scn.sweep.items()}
    results = [_run_job_remote(data, job, "cpu", str(tmp_path)) for job in jobs(scn)]
    assert fake_metrics == ["fid"]
    assert [r.point_metrics["fid"] for r in results] == [3.0] * 4
