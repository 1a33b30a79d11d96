"""The results store: the overhead column of image rows, and resume that grows (issue 11 item 8)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from linksim.runner import run_scenario
from linksim.errors import LinksimError
from linksim.scenario import scenario_from_dict

STUDY = {
    "name": "grow", "seed": 7, "device": "cpu", "channel": {"kind": "awgn"},
    "sweep": {"ebno_db": [0, 1]},
    "methods": [{"name": "a", "kind": "fake_study"}, {"name": "b", "kind": "fake_study", "scale": 2.0}],
}


def _table(folder):
    df = pd.read_csv(folder / "results.csv")
    return df.drop(columns=["seconds"]).sort_values(["method", "point"]).reset_index(drop=True)


def test_ofdm_image_row_channel_uses_and_overhead(tmp_path):
    """JSCC at CBR 1/24 on a 32 px image: N = 3·32·32/24 = 128 data symbols. With 8 data + 2 pilot
    OFDM symbols per frame and CP 8: 128 / 8 = 16 subcarriers, one frame, 2·16 = 32 pilot REs and
    10·8 = 80 CP samples -> channel_uses 128 (the CBR numerator) and overhead (32 + 80) / 128."""
    raw = {"name": "ov", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 1},
           "channel": {"kind": "ofdm", "data_symbols": 8, "pilot_symbols": 2, "cp": 8},
           "sweep": {"csnr_db": [10], "cbr": ["1/24"]}, "methods": [{"name": "j", "kind": "jscc"}],
           "metrics": ["psnr"]}
    run_scenario(scenario_from_dict(raw), output=tmp_path)
    row = pd.read_csv(tmp_path / "results.csv").iloc[0]
    assert row.channel_uses == 128
    assert row.overhead == pytest.approx(112 / 128)
    assert row.channel_uses / (3 * 32 * 32) == pytest.approx(1 / 24)
    assert "overhead" in pd.read_csv(tmp_path / "summary.csv").columns


def test_flat_image_row_has_zero_overhead(fake_methods, tmp_path):
    raw = {"name": "fl", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 16, "limit": 1},
           "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [10], "cbr": [1]},
           "methods": [{"name": "i", "kind": "fake_image"}], "metrics": ["psnr"]}
    run_scenario(scenario_from_dict(raw), output=tmp_path)
    row = pd.read_csv(tmp_path / "results.csv").iloc[0]
    assert row.channel_uses == 3 * 16 * 16 and row.overhead == 0


class TestResumeThatGrows:
    def test_new_sweep_values_run_alone(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(STUDY), output=tmp_path / "run")
        grown = dict(STUDY, sweep={"ebno_db": [0, 1, 2, 3]})
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(grown), output=tmp_path / "run")
        assert sorted(fake_methods.CALLS) == ["a:2.0", "a:3.0", "b:2.0", "b:3.0"]
        run_scenario(scenario_from_dict(grown), output=tmp_path / "ref", fresh=True)
        pd.testing.assert_frame_equal(_table(tmp_path / "run"), _table(tmp_path / "ref"))

    def test_new_method_runs_alone(self, fake_methods, tmp_path):
        one = dict(STUDY, methods=STUDY["methods"][:1])
        run_scenario(scenario_from_dict(one), output=tmp_path / "run")
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(STUDY), output=tmp_path / "run")
        assert sorted(fake_methods.CALLS) == ["b:0.0", "b:1.0"]
        run_scenario(scenario_from_dict(STUDY), output=tmp_path / "ref", fresh=True)
        pd.testing.assert_frame_equal(_table(tmp_path / "run"), _table(tmp_path / "ref"))

    def test_changed_method_is_refused_naming_the_key(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(STUDY), output=tmp_path)
        changed = dict(STUDY, methods=[STUDY["methods"][0], {"name": "b", "kind": "fake_study", "scale": 3.0}])
        with pytest.raises(LinksimError, match=r"differs in: methods\[b\]\.scale\).*--fresh"):
            run_scenario(scenario_from_dict(changed), output=tmp_path)

    def test_changed_setting_outside_the_sweep_is_refused_naming_it(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(STUDY), output=tmp_path)
        with pytest.raises(LinksimError, match=r"differs in: seed, channel\.kind"):
            run_scenario(scenario_from_dict(dict(STUDY, seed=8, channel={"kind": "rayleigh"})), output=tmp_path)

    def test_removed_point_or_method_is_refused(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(STUDY), output=tmp_path)
        with pytest.raises(LinksimError, match=r"finished point 'ebno_db=1' is not in the scenario"):
            run_scenario(scenario_from_dict(dict(STUDY, sweep={"ebno_db": [0]})), output=tmp_path)
        with pytest.raises(LinksimError, match=r"'b' \(finished here\) is not in the scenario"):
            run_scenario(scenario_from_dict(dict(STUDY, methods=STUDY["methods"][:1])), output=tmp_path)

    def test_changed_method_without_finished_jobs_is_free(self, fake_methods, tmp_path):
        """A method whose jobs never finished may change: nothing it computed is kept."""
        fake_methods.FAIL_AT["ebno_db"] = 0.0  # a dies at its first point: nothing finished
        with pytest.raises(RuntimeError):
            run_scenario(scenario_from_dict(STUDY), output=tmp_path)
        fake_methods.FAIL_AT["ebno_db"] = None
        changed = dict(STUDY, methods=[{"name": "a", "kind": "fake_study", "scale": 5.0}, STUDY["methods"][1]])
        run_scenario(scenario_from_dict(changed), output=tmp_path)
        assert len(pd.read_csv(tmp_path / "results.csv")) == 4

    def test_folder_from_before_a_new_column_is_widened(self, fake_methods, tmp_path):
        """A results.csv written before the ``overhead`` column existed is resumed, not refused."""
        raw = {"name": "old", "seed": 0, "device": "cpu", "data": {"source": "embedded", "size": 16, "limit": 2},
               "channel": {"kind": "awgn"}, "sweep": {"csnr_db": [10, 20], "cbr": [1]},
               "methods": [{"name": "i", "kind": "fake_image"}], "metrics": ["psnr"]}
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        df = pd.read_csv(tmp_path / "results.csv")
        df.drop(columns=["overhead"]).to_csv(tmp_path / "results.csv", index=False)
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(raw), output=tmp_path)
        again = pd.read_csv(tmp_path / "results.csv")
        assert list(again.columns) == list(df.columns) and len(again) == 4 and again.overhead.isna().all()


IMAGES = {"name": "imgs", "seed": 3, "device": "cpu", "data": {"source": "embedded", "size": 16, "limit": 2},
          "channel": {"kind": "awgn", "draws": 2}, "sweep": {"csnr_db": [0, 10], "cbr": [1]},
          "methods": [{"name": "a", "kind": "fake_image"}], "metrics": ["psnr"]}


def _image_rows(folder):
    """results.csv without the measured wall time (``seconds``; the simulated timeline is modelled)."""
    df = pd.read_csv(folder / "results.csv")
    df = df.drop(columns=["seconds"])
    return df.sort_values(["method", "point", "image", "draw"]).reset_index(drop=True)


class TestAddingImages:
    """Adding images to a finished run (issue 11 item 8) computes only the added ones: they are an
    image chunk of their own with its own seed, so the finished rows never change, and a method
    added later sees the same draws as the others for every (chunk, image, draw)."""

    def test_added_images_are_computed_alone(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(IMAGES), output=tmp_path / "run")
        first = _image_rows(tmp_path / "run")
        grown = dict(IMAGES, data=dict(IMAGES["data"], limit=4))
        run_scenario(scenario_from_dict(grown), output=tmp_path / "run")
        rows = _image_rows(tmp_path / "run")
        assert len(rows) == 2 * 4 * 2 and rows["image"].nunique() == 4  # points x images x draws
        old = rows[rows["image"].isin(first["image"])].reset_index(drop=True)
        pd.testing.assert_frame_equal(old, first)  # the finished rows are untouched
        recs = [json.loads(line) for line in (tmp_path / "run" / "points.jsonl").read_text().splitlines()]
        assert [r.get("chunks", [0]) for r in recs] == [[0], [0], [1], [1]]
        # a method added now runs both chunks and sees the same channel and noise as 'a' did
        both = dict(grown, methods=[*IMAGES["methods"], {"name": "b", "kind": "fake_image"}])
        run_scenario(scenario_from_dict(both), output=tmp_path / "run")
        rows = _image_rows(tmp_path / "run")
        same = ["point", "image", "draw", "psnr", "outage", "seed"]  # not the measured timings
        a, b = (rows[rows.method == m][same].reset_index(drop=True) for m in "ab")
        pd.testing.assert_frame_equal(a, b)
        # the summary counts every image x draw
        summary = pd.read_csv(tmp_path / "run" / "summary.csv")
        assert (summary["n"] == 8).all() and (summary["images"] == 4).all()

    def test_a_kill_inside_the_added_chunk_is_recomputed(self, fake_methods, tmp_path):
        """Rows of an added chunk whose record never reached points.jsonl (a kill between the two
        appends) are dropped and recomputed; the finished chunk-0 rows of that job stay."""
        run_scenario(scenario_from_dict(IMAGES), output=tmp_path / "run")
        grown = dict(IMAGES, data=dict(IMAGES["data"], limit=3))
        run_scenario(scenario_from_dict(grown), output=tmp_path / "run")
        want = _image_rows(tmp_path / "run")
        points = tmp_path / "run" / "points.jsonl"
        lines = points.read_text().splitlines(keepends=True)
        points.write_text("".join(lines[:-1]))  # the last chunk-1 record is lost, its rows are not
        run_scenario(scenario_from_dict(grown), output=tmp_path / "run")
        pd.testing.assert_frame_equal(_image_rows(tmp_path / "run"), want)

    def test_dropped_image_or_set_metric_is_refused(self, fake_methods, tmp_path):
        run_scenario(scenario_from_dict(dict(IMAGES, data=dict(IMAGES["data"], limit=3))), output=tmp_path / "r")
        with pytest.raises(LinksimError, match=r"differs in: data: finished image\(s\) '.*' no longer selected"):
            run_scenario(scenario_from_dict(IMAGES), output=tmp_path / "r")
        with_fid = dict(IMAGES, metrics=["psnr", "fid"])
        run_scenario(scenario_from_dict(with_fid), output=tmp_path / "f")
        with pytest.raises(LinksimError, match=r"set metrics \(fid\) describe all images"):
            run_scenario(scenario_from_dict(dict(with_fid, data=dict(IMAGES["data"], limit=4))), output=tmp_path / "f")


def test_rows_are_put_in_job_order_byte_for_byte(tmp_path):
    """``sort_rows``: jobs appended as they finished (b's point 2 before a's point 1) come out in
    planned order, each job's rows in their own order, every cell as written (text compared)."""
    from linksim.store import ResultsStore

    store = ResultsStore.__new__(ResultsStore)
    store.results = tmp_path / "results.csv"
    lines = ["method,point,image,psnr", "b,p2,x,1.5", "b,p2,y,\"2,5\"", "a,p1,x,3.25", "a,p2,x,0.1", "b,p1,y,7"]
    store.results.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    store.sort_rows([("a", "p1"), ("a", "p2"), ("b", "p1"), ("b", "p2")])
    want = [lines[0], lines[3], lines[4], lines[5], lines[1], lines[2]]
    assert store.results.read_bytes() == ("\r\n".join(want) + "\r\n").encode()
    before = store.results.stat().st_mtime_ns
    store.sort_rows([("a", "p1"), ("a", "p2"), ("b", "p1"), ("b", "p2")])  # in order: not rewritten
    assert store.results.stat().st_mtime_ns == before


class TestWeightTable:
    """A folder keeps the weight table its results were made with (``weights.json``); a resume
    under another table is refused, as a resume under another scenario is: the scenario alone does
    not fix what an image method computes (session 8 retrained two shipped models, and the old
    folders resumed silently with the old numbers)."""

    def _older(self, folder, name="gesco_receiver", sha="0" * 64):
        """The folder as an older linksim left it: one entry of its table differs."""
        path = folder / "weights.json"
        table = json.loads(path.read_text())
        table["weights"][name] = sha
        path.write_text(json.dumps(table))

    def test_table_is_written_and_a_changed_entry_is_refused_with_nothing_lost(self, fake_methods, tmp_path):
        from linksim.weights import KNOWN

        out = tmp_path / "run"
        run_scenario(scenario_from_dict(IMAGES), output=out)
        table = json.loads((out / "weights.json").read_text())["weights"]
        assert table["gesco_receiver"] == KNOWN["gesco_receiver"].sha256 and table["segmenter_scenes"] == KNOWN["segmenter_scenes"].sha256
        self._older(out)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        with pytest.raises(LinksimError, match=r"other weights \(differs: gesco_receiver changed "
                                               r"\(gesco model: embedded.*--fresh"):
            run_scenario(scenario_from_dict(IMAGES), output=out)
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
        run_scenario(scenario_from_dict(IMAGES), output=out, fresh=True)
        assert json.loads((out / "weights.json").read_text())["weights"] == table

    def test_an_entry_the_old_table_lacks_is_refused_too(self, fake_methods, tmp_path):
        """A model name may now resolve to a new file (``model: embedded`` did, in session 8)."""
        out = tmp_path / "run"
        run_scenario(scenario_from_dict(IMAGES), output=out)
        table = json.loads((out / "weights.json").read_text())
        del table["weights"]["gesco_receiver"]
        (out / "weights.json").write_text(json.dumps(table))
        with pytest.raises(LinksimError, match="gesco_receiver added"):
            run_scenario(scenario_from_dict(IMAGES), output=out)

    def test_same_table_resumes_and_an_older_folder_is_not_vouched_for(self, fake_methods, tmp_path):
        out = tmp_path / "run"
        run_scenario(scenario_from_dict(IMAGES), output=out)
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(IMAGES), output=out)  # same table: every job resumed
        assert fake_methods.CALLS == []
        (out / "weights.json").unlink()  # a folder from before the table: resumed, its weights unknown
        run_scenario(scenario_from_dict(dict(IMAGES, sweep={"csnr_db": [0, 10, 20], "cbr": [1]})), output=out)
        assert not (out / "weights.json").exists()

    def test_a_users_weight_file_that_changed_is_refused(self, fake_methods, tmp_path):
        """A file a method names by path (``model: my.safetensors``) is not in the table: the folder
        keeps its fingerprint; a finished method whose file changed is refused, one whose file is
        the same resumes, and a method that has not run yet may change its file freely."""
        w = tmp_path / "my.safetensors"
        w.write_bytes(b"weights v1")
        raw = dict(IMAGES, methods=[{"name": "a", "kind": "fake_image", "weights": str(w)}])
        out = tmp_path / "run"
        run_scenario(scenario_from_dict(raw), output=out)
        files = json.loads((out / "weights.json").read_text())["files"]
        assert list(files) == ["a"] and list(files["a"]) == ["weights"]  # cbr "1", csnr values: not files
        w.write_bytes(b"weights v2")
        with pytest.raises(LinksimError, match=r"differs: methods\[a\]\.weights changed\).*--fresh"):
            run_scenario(scenario_from_dict(raw), output=out)
        w.write_bytes(b"weights v1")  # the same content again (a new mtime): resumed
        fake_methods.CALLS.clear()
        run_scenario(scenario_from_dict(raw), output=out)
        assert fake_methods.CALLS == []
        w2 = tmp_path / "other.safetensors"
        w2.write_bytes(b"b's weights")
        grown = dict(raw, methods=[*raw["methods"], {"name": "b", "kind": "fake_image", "weights": str(w2)}])
        run_scenario(scenario_from_dict(grown), output=out)
        w2.write_bytes(b"b's weights, retrained")
        with pytest.raises(LinksimError, match=r"methods\[b\]\.weights changed"):
            run_scenario(scenario_from_dict(grown), output=out)

    def test_phy_studies_do_not_depend_on_weights(self, fake_methods, tmp_path):
        raw = {"name": "phy", "seed": 0, "device": "cpu", "channel": {"kind": "awgn"}, "sweep": {"ebno_db": [0]},
               "methods": [{"name": "s", "kind": "fake_study"}]}
        run_scenario(scenario_from_dict(raw), output=tmp_path / "p")
        self._older(tmp_path / "p")
        run_scenario(scenario_from_dict(raw), output=tmp_path / "p")


def test_fresh_leaves_nothing_of_the_earlier_run(fake_methods, tmp_path):
    """``--fresh`` removes every file an earlier run wrote (its report.tex was left behind, and
    looked current next to the new report.md)."""
    out = tmp_path / "run"
    run_scenario(scenario_from_dict(IMAGES), output=out)
    for name in ("report.md", "report.tex", "run.json", "summary.csv"):
        (out / name).write_text("stale")
    run_scenario(scenario_from_dict(IMAGES), output=out, fresh=True)
    assert not any((out / n).is_file() and (out / n).read_text() == "stale"
                   for n in ("report.md", "report.tex", "run.json", "summary.csv"))
