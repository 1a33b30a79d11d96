"""Errors after validation are one line too: early checks in validate, picklable errors for the
process executor, set metrics below their minimum reported unavailable, unexpected failures logged."""

from __future__ import annotations

import json
import pickle
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from linksim.cli import main
from linksim.runner import run_scenario
from linksim.errors import DataError, LinksimError, ScenarioError, WeightsUnavailable
from linksim.scenario import scenario_from_dict


@pytest.mark.parametrize("err", [
    ScenarioError("s.yaml", "methods[0].kind", "unknown method 'foo'"),
    DataError("/data/x.png", "cannot decode the image"),
    WeightsUnavailable("alexnet", "/w/alexnet.pth", "download it"),
    LinksimError("plain"),
])
def test_errors_pickle_to_the_same_error(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err) and vars(back) == vars(err)
    # simpy re-raises a failed process's exception as type(exc)(*exc.args) (a study's error
    # passes through it): that must be the same error too, not a TypeError
    again = type(err)(*err.args)
    assert str(again) == str(err) and vars(again) == vars(err)


def _folder(tmp_path, n=2):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _raw(tmp_path, folder, **over):
    raw = {"name": "err", "seed": 0, "device": "cpu",
           "data": {"source": "folder", "folder": str(folder), "size": 32, "limit": 4},
           "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"]},
           "methods": [{"name": "deepjscc", "kind": "jscc", "model": "embedded"}],
           "output": str(tmp_path / "out")}
    raw.update(over)
    return raw


def _write(tmp_path, raw):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


class TestValidateEarly:
    def test_empty_folder(self, tmp_path):
        (tmp_path / "empty").mkdir()
        with pytest.raises(ScenarioError, match=r"data.folder: .*no image files"):
            scenario_from_dict(_raw(tmp_path, tmp_path / "empty"))

    def test_corrupt_file(self, tmp_path, capsys):
        folder = _folder(tmp_path)
        (folder / "im1.png").write_bytes(b"not a png")
        assert main(["validate", str(_write(tmp_path, _raw(tmp_path, folder)))]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "data.folder" in err and "im1.png" in err

    def test_user_model_latent_size_vs_cbr(self, tmp_path, capsys):
        from linksim.codecs.jscc.adjscc import embedded_path

        c2 = embedded_path(Fraction(1, 48))  # a C = 2 model (CBR 1/48) at a CBR 1/24 point
        raw = _raw(tmp_path, _folder(tmp_path), methods=[{"name": "mine", "kind": "jscc", "model": str(c2)}])
        assert main(["validate", str(_write(tmp_path, raw))]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "methods[0]" in err and "C=2" in err and "1/24" in err

    def test_show_prints_every_default(self, tmp_path, capsys):
        raw = _raw(tmp_path, _folder(tmp_path))
        assert main(["validate", str(_write(tmp_path, raw)), "--show"]) == 0
        out = capsys.readouterr().out
        shown = yaml.safe_load(out.rsplit("\n", 2)[0])
        assert shown["data"]["limit"] == 4 and shown["channel"]["draws"] == 1
        assert shown["methods"][0]["use_no_eff"] is True and shown["traffic"]["kind"] == "batch"
        assert scenario_from_dict(shown).dump() == scenario_from_dict(raw).dump()  # a valid scenario again


def test_set_metric_on_too_few_images_is_unavailable_with_reason(tmp_path, capsys):
    raw = _raw(tmp_path, _folder(tmp_path, 1), metrics=["psnr", "kid"], sweep={"csnr_db": [10], "cbr": ["1/24"]})
    path = _write(tmp_path, raw)
    assert main(["validate", str(path)]) == 0
    assert "kid needs at least 10 images x draws per point" in capsys.readouterr().err
    with pytest.warns(Warning, match="kid"):
        run_scenario(scenario_from_dict(raw), fresh=True)
    out = tmp_path / "out"
    reason = json.loads((out / "run.json").read_text())["unavailable_metrics"]["kid"]
    assert "needs at least 10" in reason and "got 1" in reason
    summary = pd.read_csv(out / "summary.csv")
    assert "kid" not in summary or summary["kid"].isna().all()
    assert summary["psnr"].notna().all()


def test_unexpected_failure_is_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    import linksim.runner

    def boom(*a, **k):
        raise RuntimeError("something internal\nwith a second line")

    monkeypatch.setattr(linksim.runner, "run_scenario", boom)
    monkeypatch.delenv("LINKSIM_DEBUG", raising=False)
    raw = _raw(tmp_path, _folder(tmp_path))
    assert main(["run", str(_write(tmp_path, raw))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unexpected RuntimeError: something internal" in err[0]
    log = tmp_path / "out" / "linksim-error.log"
    assert f"traceback in {log}" in err[0]
    assert "Traceback" in log.read_text() and "boom" in log.read_text()
