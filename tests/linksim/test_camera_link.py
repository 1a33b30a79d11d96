"""``scenarios/camera_link.yaml`` end to end, tiny (issue 17 item 2): the shipped file with 2 frames at
32x32, two CSNRs and HiFi-DiffCom's stride ``step_scale: 0.25`` (a quarter of the steps), every
method of the file, through the CLI (results, figures)."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from linksim.cli import main
from linksim.timing import PROFILE_DIR

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "camera_link.yaml"


def test_tiny_camera_link(tmp_path):
    raw = yaml.safe_load(SCENARIO.read_text())
    raw["data"].update(limit=2, size=32)
    raw["sweep"]["csnr_db"] = [0, 20]
    raw.update(executor="inprocess", output=str(tmp_path / "out"))
    for m in raw["methods"]:
        if m["kind"] == "hifi_diffcom":
            m["step_scale"] = 0.25
    file = tmp_path / "camera_link.yaml"
    file.write_text(yaml.safe_dump(raw))
    assert main(["run", str(file)]) == 0
    out = tmp_path / "out"
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = [m["name"] for m in raw["methods"]]
    assert sorted({r["method"] for r in rows}) == sorted(methods) and len(rows) == len(methods) * 2 * 2
    assert {"aoi_s", "psnr_in_time", "ms_ssim_in_time", "deadline_missed", "latency_s"} <= set(rows[0])
    assert {r["image"] for r in rows} == {"chelsea_f000", "chelsea_f001"}
    # what the profile predicts (read here from the YAML): DeepJSCC's 32x32 decode fits in 100 ms
    # behind its airtime; one HiFi-DiffCom network evaluation over TDL already costs more than half of it
    prof = yaml.safe_load((PROFILE_DIR / "cpu-2core.yaml").read_text())
    jscc = next(e for e in prof["entries"] if e["kind"] == "jscc")
    hifi = next(e for e in prof["entries"] if e["kind"] == "hifi_diffcom" and "tdl" in e.get("channels", [])
                and e.get("when", {}).get("prior") == "embedded")
    # HEVC+LDPC with HARQ: the receiver's service time is the HEVC decode alone (the profile's entry
    # for ldpc_in_service false); the rest of its latency is airtime and <= max_tx - 1 feedback waits
    source = next(e for e in prof["entries"] if e["kind"] == "separation"
                  and e.get("when", {}).get("ldpc_in_service") is False)
    (sep,) = [m for m in raw["methods"] if m["kind"] == "separation"]
    fb, max_tx = sep["harq"]["feedback_delay_s"], sep["harq"]["max_tx"]
    scale = 32 * 32 / 64 ** 2
    for r in rows:
        if r["method"] == sep["name"]:
            assert 1 <= float(r["transmissions"]) <= max_tx and r["mcs"] and r["goodput"] != ""
            rest = float(r["latency_s"]) - float(r["airtime_s"]) - source["s_per_image"] * scale
            assert -1e-9 <= rest <= (max_tx - 1) * fb + 1e-9, r
    for r in rows:
        if r["method"] == "deepjscc":
            assert abs(float(r["latency_s"]) - float(r["airtime_s"]) - jscc["s_per_image"] * scale) < 1e-9
            assert r["deadline_missed"] == "False" and r["psnr_in_time"] == r["psnr"]
        if r["method"].startswith("hifi"):
            assert int(r["nfe"]) >= 2 and r["deadline_missed"] == "True"
            assert float(r["latency_s"]) >= (hifi["s_per_image"] + int(r["nfe"]) * hifi["s_per_nfe"]) * scale > 0.1
    for fig in ("quality_vs_latency", "deadline_miss_vs_csnr", "psnr_in_time_vs_csnr", "aoi_s_vs_csnr"):
        assert (out / "figures" / f"{fig}.png").is_file(), fig
    assert "quality_vs_latency" in (out / "report.md").read_text()
