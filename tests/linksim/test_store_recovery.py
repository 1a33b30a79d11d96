"""The store's recovery on hand-written folders (no run): what ``read_points`` and
``ResultsStore._recover`` keep, drop, rewrite and warn about (issue 12 items 1 and 9). Every
expected file content is written out here."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest

from linksim.errors import LinksimError
from linksim.scenario import scenario_from_dict
from linksim.store import ResultsStore, columns_for, read_points

RAW = {"name": "rec", "seed": 1, "device": "cpu", "channel": {"kind": "awgn"}, "sweep": {"ebno_db": [0, 1]},
       "methods": [{"name": "a", "kind": "fake_study"}]}


def _rec(point, **extra):
    return json.dumps({"method": "a", "point": point, "seconds": 0.1, "point_metrics": {}, **extra}) + "\n"


def _rows(scn, points):
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns_for(scn), restval="")
    w.writeheader()
    for p in points:
        w.writerow({"method": "a", "kind": "fake_study", "channel": "awgn", "point": p, "ber": "0.5"})
    return buf.getvalue().replace("\r\n", "\n")  # as read_text() gives it back


@pytest.fixture
def scn(fake_methods):
    return scenario_from_dict(RAW)


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "linksim.store"]


class TestReadPoints:
    def test_missing_file_and_blank_lines(self, tmp_path):
        assert read_points(tmp_path / "absent.jsonl") == []
        p = tmp_path / "points.jsonl"
        p.write_text(_rec("ebno_db=0") + "\n  \n" + _rec("ebno_db=1"))
        assert [r["point"] for r in read_points(p)] == ["ebno_db=0", "ebno_db=1"]

    def test_torn_and_garbled_last_lines_are_dropped_with_one_warning(self, tmp_path, caplog):
        p = tmp_path / "points.jsonl"
        p.write_text(_rec("ebno_db=0") + _rec("ebno_db=1")[:15])  # no newline: torn
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            assert [r["point"] for r in read_points(p)] == ["ebno_db=0"]
        assert _warnings(caplog) == []  # a torn tail is cut silently here; the store warns when it cuts
        p.write_text(_rec("ebno_db=0") + "\0\0\0\0\n")  # a complete but garbled last line (zero-filled block)
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            assert [r["point"] for r in read_points(p)] == ["ebno_db=0"]
        assert len(_warnings(caplog)) == 1
        p.write_text(_rec("ebno_db=0") + json.dumps({"method": "a"}) + "\n")  # a record without its point
        assert [r["point"] for r in read_points(p)] == ["ebno_db=0"]

    @pytest.mark.parametrize("middle", ["{not json\n", json.dumps({"point": "x"}) + "\n", "[1, 2]\n"])
    def test_damage_before_the_last_line_is_an_error_naming_it(self, tmp_path, middle):
        p = tmp_path / "points.jsonl"
        p.write_text(_rec("ebno_db=0") + middle + _rec("ebno_db=1"))
        with pytest.raises(LinksimError, match=r"points.jsonl: line 2 is not a finished-job record; rerun with --fresh"):
            read_points(p)


class TestRecover:
    def test_consistent_folder_is_left_byte_for_byte(self, scn, tmp_path, caplog):
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0") + _rec("ebno_db=1"))
        (tmp_path / "results.csv").write_text(_rows(scn, ["ebno_db=0", "ebno_db=1"]))
        before = {f: (tmp_path / f).read_bytes() for f in ("points.jsonl", "results.csv")}
        inodes = {f: (tmp_path / f).stat().st_ino for f in before}
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            store = ResultsStore(tmp_path, scn)
        assert store.finished() == {("a", "ebno_db=0"), ("a", "ebno_db=1")}
        assert {f: (tmp_path / f).read_bytes() for f in before} == before and _warnings(caplog) == []
        # not even rewritten with the same bytes: a rewrite is a new file renamed over the old one
        assert {f: (tmp_path / f).stat().st_ino for f in before} == inodes

    def test_header_only_folder_is_left_alone(self, scn, tmp_path, caplog):
        """A run that finished no job: a header and no ``points.jsonl``. Nothing is damaged, so
        nothing is written (no warning, the same file, no empty ``points.jsonl``)."""
        (tmp_path / "results.csv").write_text(_rows(scn, []))
        inode = (tmp_path / "results.csv").stat().st_ino
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            store = ResultsStore(tmp_path, scn)
        assert store.finished() == set() and _warnings(caplog) == []
        assert (tmp_path / "results.csv").read_text() == _rows(scn, [])
        assert (tmp_path / "results.csv").stat().st_ino == inode
        assert not (tmp_path / "points.jsonl").exists()

    @pytest.mark.parametrize("torn", ["m", "method,ki"])
    def test_torn_header_is_rewritten_with_one_warning(self, scn, tmp_path, caplog, torn):
        """A ``results.csv`` that is only the start of its header (one byte too): one warning, and
        the full header written (else the next job's rows would be appended to the torn one)."""
        (tmp_path / "results.csv").write_text(torn)
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            ResultsStore(tmp_path, scn)
        assert len(_warnings(caplog)) == 1
        assert (tmp_path / "results.csv").read_text() == _rows(scn, [])

    def test_orphan_rows_and_rowless_records_are_dropped(self, scn, tmp_path):
        # ebno_db=0: record and row; ebno_db=1: a row whose record never came (killed between the
        # two appends); and a record for a point with no row (its rows were lost)
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0") + _rec("ebno_db=7"))
        (tmp_path / "results.csv").write_text(_rows(scn, ["ebno_db=0", "ebno_db=1"]))
        store = ResultsStore(tmp_path, scn)
        assert store.finished() == {("a", "ebno_db=0")}
        assert (tmp_path / "points.jsonl").read_text() == _rec("ebno_db=0")
        assert (tmp_path / "results.csv").read_text() == _rows(scn, ["ebno_db=0"])

    def test_torn_tails_are_cut_to_the_last_complete_line(self, scn, tmp_path, caplog):
        rows = _rows(scn, ["ebno_db=0", "ebno_db=1"])
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0") + _rec("ebno_db=1")[:20])
        (tmp_path / "results.csv").write_text(rows + "a,fake_st")  # a third row torn mid-way
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            store = ResultsStore(tmp_path, scn)
        assert store.finished() == {("a", "ebno_db=0")}
        assert len(_warnings(caplog)) == 2  # one per torn file
        assert (tmp_path / "points.jsonl").read_text() == _rec("ebno_db=0")
        assert (tmp_path / "results.csv").read_text() == _rows(scn, ["ebno_db=0"])

    def test_short_row_and_empty_files(self, scn, tmp_path, caplog):
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0"))
        good = _rows(scn, ["ebno_db=0"])
        (tmp_path / "results.csv").write_text(good + "a,fake_study\n")  # a complete but short row
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            ResultsStore(tmp_path, scn)
        assert (tmp_path / "results.csv").read_text() == good and len(_warnings(caplog)) == 1
        long_row = good.splitlines()[1] + ",extra"
        (tmp_path / "results.csv").write_text(good + long_row + "\n")  # a row with one cell too many
        ResultsStore(tmp_path, scn)
        assert (tmp_path / "results.csv").read_text() == good
        (tmp_path / "results.csv").write_text("")
        store = ResultsStore(tmp_path, scn)
        assert store.finished() == set() and (tmp_path / "points.jsonl").read_text() == ""
        assert (tmp_path / "results.csv").read_text() == _rows(scn, [])

    def test_narrower_header_is_widened_and_foreign_columns_refused(self, scn, tmp_path):
        cols = columns_for(scn)
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0"))
        narrow = [c for c in cols if c != "overhead"]
        (tmp_path / "results.csv").write_text(",".join(narrow) + "\n" + ",".join(
            {"method": "a", "point": "ebno_db=0", "ber": "0.5"}.get(c, "") for c in narrow) + "\n")
        ResultsStore(tmp_path, scn)
        head, row = (tmp_path / "results.csv").read_text().splitlines()
        assert head.split(",") == cols and row.split(",")[cols.index("ber")] == "0.5"
        # a header without the last column (an older linksim that wrote one column fewer)
        (tmp_path / "results.csv").write_text(",".join(cols[:-1]) + "\n" + ",".join(
            {"method": "a", "point": "ebno_db=0", "ber": "0.5"}.get(c, "") for c in cols[:-1]) + "\n")
        ResultsStore(tmp_path, scn)
        head, row = (tmp_path / "results.csv").read_text().splitlines()
        assert head.split(",") == cols and row.split(",")[cols.index("ber")] == "0.5" and row.endswith(",")
        (tmp_path / "results.csv").write_text(",".join(cols + ["alien"]) + "\n")
        with pytest.raises(LinksimError, match=r"has columns this scenario does not write \(alien\)"):
            ResultsStore(tmp_path, scn)

    def test_garbled_last_record_is_removed_from_the_file(self, scn, tmp_path):
        """A complete-looking but garbled last line (a zero-filled block after a crash) is not only
        skipped on reading: the file is rewritten without it."""
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0") + "\0\0\0\0\n")
        (tmp_path / "results.csv").write_text(_rows(scn, ["ebno_db=0"]))
        ResultsStore(tmp_path, scn)
        assert (tmp_path / "points.jsonl").read_text() == _rec("ebno_db=0")

    def test_row_the_csv_module_refuses_is_dropped_alone(self, scn, tmp_path, caplog):
        """A complete line the csv module cannot read (a zero-filled block longer than its 128 KiB
        field limit, followed by later writes): that line is dropped with one warning and the file
        rewritten; the rows around it and their jobs are kept."""
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0") + _rec("ebno_db=1"))
        head, row0, row1 = _rows(scn, ["ebno_db=0", "ebno_db=1"]).splitlines(keepends=True)
        (tmp_path / "results.csv").write_text(head + row0 + "\0" * 140_000 + "\n" + row1)
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            store = ResultsStore(tmp_path, scn)
        assert store.finished() == {("a", "ebno_db=0"), ("a", "ebno_db=1")} and len(_warnings(caplog)) == 1
        assert (tmp_path / "results.csv").read_text() == head + row0 + row1

    def test_header_the_csv_module_refuses_drops_every_row(self, scn, tmp_path, caplog):
        """Without a readable header no row can be read: the file is rewritten as a header, with
        one warning, and no job is finished (its rows are gone)."""
        (tmp_path / "points.jsonl").write_text(_rec("ebno_db=0"))
        head, row0 = _rows(scn, ["ebno_db=0"]).splitlines(keepends=True)
        (tmp_path / "results.csv").write_text("\0" * 140_000 + "\n" + row0)
        with caplog.at_level(logging.WARNING, logger="linksim.store"):
            store = ResultsStore(tmp_path, scn)
        assert store.finished() == set() and len(_warnings(caplog)) == 1
        assert (tmp_path / "results.csv").read_text() == head
        assert (tmp_path / "points.jsonl").read_text() == ""
