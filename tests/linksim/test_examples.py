"""Every documented example sweep and every shipped scenario runs end to end (on tiny data):
results, summary, figures (one point included) and reconstruction grids for any swept axis."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from linksim.cli import main
from linksim.runner import run_scenario
from linksim.reports import make_report
from linksim.scenario import scenario_from_dict
from linksim.sweep import parse_point_dirname, point_dirname, safe_name

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

TINY_OFDM = {"cp": 4, "data_symbols": 4, "paths": 4}


def _run(tmp_path, raw, **kw):
    out = tmp_path / raw["name"]
    scn = scenario_from_dict(dict(raw, output=str(out)))
    run_scenario(scn, output=out, fresh=True)
    return out, make_report(out, **kw)


# The README's example axes ("a sweep: axis may be any dotted channel key"), each with a method
# that transmits images, two CSNR points (curves) or one (bars), and saved reconstructions.
README_SWEEPS = {
    "estimator": ({"kind": "ofdm", **TINY_OFDM}, {"channel.estimator": ["perfect", "ls", "lmmse"]},
                  ["ofdm/perfect", "ofdm/ls", "ofdm/lmmse"], [0, 10]),
    "kind": ({"kind": "awgn"}, {"channel.kind": ["awgn", "rayleigh"]}, ["awgn", "rayleigh"], [5]),
    "tdl_model": ({"kind": "tdl", "cp": 4, "data_symbols": 4}, {"channel.tdl_model": ["A", "C"]},
                  ["tdl-A/lmmse", "tdl-C/lmmse"], [5]),
}


@pytest.mark.parametrize("axis", sorted(README_SWEEPS))
def test_readme_channel_sweeps_run_end_to_end(tmp_path, axis):
    channel, extra, variants, csnrs = README_SWEEPS[axis]
    raw = {"name": f"sweep_{axis}", "seed": 1, "device": "cpu",
           "data": {"source": "embedded", "size": 32, "limit": 2}, "channel": channel,
           "sweep": {"csnr_db": csnrs, "cbr": ["1/24"], **extra},
           "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}],
           "save_images": True}
    out, paths = _run(tmp_path, raw)
    names = {p.name for p in paths}
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["channel"].unique()) == sorted(variants)
    # the variants are lines (or bars) of the same figure, not one figure each
    fig = "psnr_vs_csnr.png" if len(csnrs) > 1 else "psnr_bars.png"
    assert fig in names and f"{fig[:-4]}.pdf" in names
    # one reconstruction grid per variant and chosen CSNR, found through the point folders
    for v in variants:
        for c in csnrs:
            assert f"recon_{safe_name(v)}_{c:g}dB_cbr1-24.png" in names, (v, c, sorted(names))
    report = (out / "report.md").read_text()
    for v in variants:
        assert f"| deepjscc | jscc | {v} |" in report
    assert (out / "report.tex").read_text().count(r"\begin{tabular}") == len(csnrs)
    # `linksim plot` remakes the same files
    assert main(["plot", str(out)]) == 0


def test_one_point_run_writes_a_figure(tmp_path):
    raw = {"name": "one_point", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 1},
           "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [10], "cbr": ["1/24"]},
           "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}]}
    out, paths = _run(tmp_path, raw)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert {p.name for p in pngs} == {"psnr_bars.png", "ms_ssim_bars.png"}
    assert all(p.stat().st_size > 5000 for p in pngs)


def _tiny(raw: dict) -> dict:
    """A shipped scenario shrunk to seconds: one image, two values of the first axis and one of
    the others, few diffusion steps / BER blocks, in-process."""
    raw = copy.deepcopy(raw)
    raw.pop("output", None)
    raw.update(executor="inprocess", workers=1, device="cpu")
    if raw.get("data"):
        raw["data"]["limit"] = 1
        raw["data"].pop("names", None)
    first = True
    for axis, values in raw.get("sweep", {}).items():
        values = values if isinstance(values, list) else [values]
        raw["sweep"][axis] = values[:2] if first or axis.startswith("channel.") else values[-1:]
        first = first and axis.startswith("channel.")
    for m in raw["methods"]:
        if m["kind"] in ("diffcom", "blind_diffcom", "diffjscc", "lrisc"):
            m["num_steps"] = 2
        if m["kind"] == "hifi_diffcom":
            m["step_scale"] = 0.01
        if m["kind"] == "phy_ber":
            m.update(max_blocks=2, batch_size=2)
    return raw


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_run_end_to_end(tmp_path, path):
    raw = _tiny(yaml.safe_load(path.read_text()))
    out = tmp_path / "out"
    code = main(["run", str(_write(tmp_path, raw)), "--output", str(out), "--fresh"])
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["method"]) == {m["name"] for m in raw["methods"]}
    assert list((out / "figures").glob("*.png")), "every run writes at least one figure"
    assert (out / "report.md").is_file()


def _write(tmp_path, raw) -> Path:
    p = tmp_path / "scenario.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


@pytest.mark.parametrize("values", [
    {"csnr_db": -2.5, "cbr": "1/48"},
    {"csnr_db": 0, "cbr": "1/24", "channel.estimator": "ls"},
    {"csnr_db": 5, "cbr": "1/24", "channel.kind": "tdl", "channel.tdl_model": "C"},
    {"csnr_db": 5, "cbr": "1/24", "channel.delay_spread": 3e-7, "channel.label": "a/b,c=d e_f"},
])
def test_point_folders_name_and_parse_back(values):
    from linksim.sweep import format_value

    import re

    name = point_dirname(values)
    assert re.fullmatch(r"[A-Za-z0-9._+,=%-]+", name), name  # safe characters and percent escapes only
    expect = {k: (v if isinstance(v, str) else format_value(v)) for k, v in values.items()}
    assert parse_point_dirname(name) == expect


def test_older_point_folders_still_parse():
    assert parse_point_dirname("10_0.0416667") == {"csnr_db": "10", "cbr": "0.0416667"}
    assert parse_point_dirname("10.0_1-24") == {"csnr_db": "10", "cbr": "1/24"}
    assert parse_point_dirname("notes") is None


def test_safe_name():
    assert safe_name("ofdm/lmmse") == "ofdm-lmmse"
    assert safe_name("tdl-C/ls") == "tdl-C-ls"
    assert safe_name("a  b:*c") == "a-b-c"
    assert safe_name("///") == "_"
