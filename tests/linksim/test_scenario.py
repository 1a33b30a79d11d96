"""Scenario validation: every user error is one ScenarioError line naming the key path."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from linksim.cli import main
from linksim.errors import ScenarioError
from linksim.scenario import load_scenario, parse_cbr, scenario_from_dict

REPO = Path(__file__).resolve().parents[2]

PHY = {
    "name": "t",
    "channel": {"kind": "awgn"},
    "sweep": {"ebno_db": [0, 4]},
    "methods": [{"name": "q", "kind": "phy_ber", "modulation": "qpsk"}],
}
IMG = {
    "name": "t",
    "data": {"source": "embedded", "size": 64, "limit": 2},
    "channel": {"kind": "ofdm", "data_symbols": 16},
    "sweep": {"csnr_db": [0, 10], "cbr": ["1/24", "1/12"]},
    "methods": [{"name": "f", "kind": "fake_image"}],
}


def _with(base, path, value):
    """Copy of ``base`` with ``value`` set at a dotted path (``methods.0.kind``)."""
    import copy

    d = copy.deepcopy(base)
    head, last = ([path.split(".")[0]], path.split(".", 1)[1]) if path.startswith("sweep.") else (
        path.split(".")[:-1], path.split(".")[-1])
    node = d
    for part in head:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return d


# (mutation of PHY or IMG, key path expected in the message, a word of the message)
CASES = [
    ("phy", "colour", "red", r"t\.yaml: colour: unknown key 'colour'; allowed: name, seed"),
    ("phy", "channel.fading", 3, r"channel\.fading: unknown key 'fading'; allowed: "),
    ("phy", "seed", "zero", r"seed: .*integer.*'zero'"),
    ("phy", "methods.0.kind", "nope", r"methods\[0\]\.kind: unknown method kind 'nope'; allowed: .*phy_ber"),
    ("phy", "methods.0.modulation", "8psk", r"methods\[0\]\.modulation: .*'16qam'.*; got '8psk'"),
    ("phy", "channel.kind", "wifi", r"channel\.kind: unknown channel kind 'wifi'; allowed: awgn, ofdm, rayleigh, tdl"),
    ("phy", "sweep.ebno_db", [], r"sweep\.ebno_db: empty sweep axis"),
    ("phy", "sweep.snr", [1], r"sweep\.snr: unknown sweep axis 'snr'; allowed: csnr_db, ebno_db, cbr"),
    ("phy", "sweep.channel.kind", ["awgn", "bogus"], r"sweep\.channel\.kind\[1\]: unknown channel kind 'bogus'"),
    ("phy", "metrics", ["psnr", "sharpness"], r"metrics\[1\]: unknown metric 'sharpness'; allowed: .*psnr"),
    ("img", "sweep.cbr", ["1/24", "-1/12"], r"sweep\.cbr\[1\]: CBR must be positive"),
    ("img", "sweep.cbr", [0], r"sweep\.cbr\[0\]: CBR must be positive"),
    ("img", "sweep.cbr", ["1/24", "1/7"], r"sweep\.cbr\[1\]: CBR 1/7 gives N = 12288/7 symbols"),
    # 1/1024: N = 12 symbols, not a multiple of 16 OFDM data symbols -> no grid carries it
    ("img", "sweep.cbr", ["1/1024"], r"sweep\.cbr\[0\]: CBR 1/1024 \(N = 12\) does not fit the ofdm grid: .*multiple of data_symbols=16"),
    ("img", "data.source", "folder", r"data\.folder: source: folder needs a folder path"),
    ("img", "data.folder", "/no/such/dir", None),
]


@pytest.mark.parametrize("base,path,value,pattern", CASES, ids=[c[1] + "=" + str(c[2]) for c in CASES])
def test_errors_name_the_key_path(fake_methods, tmp_path, capsys, base, path, value, pattern):
    raw = _with(PHY if base == "phy" else IMG, path, value)
    if path == "data.folder":
        raw["data"]["source"] = "folder"
        pattern = r"data\.folder: folder '/no/such/dir' does not exist"
    file = tmp_path / "t.yaml"
    file.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError, match=pattern) as info:
        load_scenario(file)
    assert "\n" not in str(info.value)
    assert main(["validate", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert info.value.key_path in err


def test_unknown_method_kind_key_path():
    with pytest.raises(ScenarioError, match=r"methods\[0\]\.kind"):
        scenario_from_dict(_with(PHY, "methods.0.kind", "hevc_magic"))


def test_yaml_syntax_error_names_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nchannel: {kind: awgn\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: line \d+, column \d+: YAML syntax error"):
        load_scenario(f)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the scenario"):
        load_scenario(tmp_path / "none.yaml")


def test_valid_image_scenario_parses_cbr(fake_methods):
    scn = scenario_from_dict(IMG)
    assert scn.sweep["cbr"] == [Fraction(1, 24), Fraction(1, 12)]
    assert scn.methods[0].name == "f" and scn.data.shape == (64, 64)


def test_parse_cbr():
    assert parse_cbr("1/24") == Fraction(1, 24)
    assert parse_cbr(0.125) == Fraction(1, 8)
    assert parse_cbr(1) == Fraction(1)
    for bad in ("a/b", "1/0", -0.5, True, None):
        with pytest.raises(ValueError):
            parse_cbr(bad)


def test_method_names_unique():
    raw = _with(PHY, "methods", [{"kind": "phy_ber"}, {"kind": "phy_ber", "modulation": "16qam"}])
    with pytest.raises(ScenarioError, match=r"methods\[1\]\.name: method name 'phy_ber' is used twice"):
        scenario_from_dict(raw)


def test_diffusion_receiver_names_its_jscc_method():
    # DESIGN §4: ``jscc: deepjscc`` = the weights of the kind: jscc method called deepjscc
    raw = _with(IMG, "methods", [{"name": "deepjscc", "kind": "jscc", "model": "some/weights.safetensors"},
                                 {"name": "hifi", "kind": "hifi_diffcom", "jscc": "deepjscc"},
                                 {"name": "dc", "kind": "diffcom", "jscc": "embedded"}])
    scn = scenario_from_dict(raw, check_points=False)  # the weights file does not exist
    assert scn.methods[1].jscc == "some/weights.safetensors" and scn.methods[1].kind == "hifi_diffcom"
    assert scn.methods[2].jscc == "embedded"


@pytest.mark.parametrize("name", ["quickstart", "phy_awgn_qam", "phy_ldpc_ofdm", "fading_ofdm"])
def test_shipped_scenarios_validate(name, capsys):
    assert main(["validate", str(REPO / "scenarios" / f"{name}.yaml")]) == 0
    assert "ok" in capsys.readouterr().out


def test_embedded_quickstart_matches_repository():
    from linksim.cli import quickstart_path

    assert quickstart_path().read_text() == (REPO / "scenarios" / "quickstart.yaml").read_text()


def test_threads_key_sets_and_restores_torch_threads(fake_methods):
    import torch

    from linksim.executors import torch_threads

    assert scenario_from_dict(_with(IMG, "threads", 1)).threads == 1
    with pytest.raises(ScenarioError, match="threads"):
        scenario_from_dict(_with(IMG, "threads", 0))
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
