"""The results folder of a run (DESIGN.md §5): durable appends, crash-safe resume, summary, run record.

Files in ``output``:

* ``results.csv`` — one row per image × method × sweep point (image methods) or per method ×
  sweep point (phy studies); the header is fixed at the start of a run (:func:`columns_for`);
  rows are appended as jobs finish and put in job order when the run ends
  (:meth:`ResultsStore.sort_rows`), so the file does not depend on the executor;
* ``points.jsonl`` — one line per *finished* job ``{"method", "point", "seconds", "point_metrics"}``.
  A job's rows are appended to ``results.csv`` and fsynced first, then its line here: a job is
  finished iff its line exists, so a run killed between the two writes loses nothing finished
  and ``--resume`` drops the orphan rows;
* ``summary.csv`` — per method × point: ``n`` (= images × draws), ``images``, ``draws``, means and
  95 % intervals (Student t, ``<col>_ci95``) over the images and draws, ``outage_rate``,
  ``crc_failures``, ``<metric>_no_outage`` (:func:`linksim.summary.summarize`) and the set metrics
  (FID, KID); phy rows are copied as they are;
* ``scenario.yaml`` — the resolved scenario; ``run.json`` — versions, device, seed, timings,
  ``metrics`` (``{name: Metric.describe()}``: which implementation and weights made the numbers) and
  ``unavailable_metrics`` (``{name: reason}``).

Crash safety (a ``SIGKILL`` at any instant loses at most the job that was running):

* whole files (``scenario.yaml``, ``summary.csv``, ``run.json``, the header of ``results.csv``,
  figures) are written to a temporary file in the same folder, fsynced and renamed over the old one
  (:func:`atomic_write_text`, :func:`atomic_path`), so a reader sees the old or the new file, never
  half of one; stale temporary files of a killed run are removed when the folder is opened;
* the two append-only files can only be torn at their end: on opening, a last line without its
  newline (or that does not parse) is dropped with one warning line, the file is truncated to its
  last complete line, and that job is recomputed (:meth:`ResultsStore._recover`).

Resume that grows: a folder is resumed when every *finished* job would compute the same thing under
the new scenario (:func:`resume_conflicts`): the same settings outside ``sweep`` and ``methods``
(but for :data:`EXECUTION_KEYS` and the image selection, :data:`SELECTION_KEYS`), the same config
of every method that has finished jobs, and every finished point still in the sweep. New sweep
values and new methods are simply run; anything else is refused with the keys that differ.

Added images (``data.limit`` raised, ``data.names`` extended, files added to ``data.folder``) are a
new *image chunk* (``images.json``: the image names of each chunk, in order; chunk 0 = the images
of the first run). Every (method, point) computes each chunk on its own, with a seed of its own
(:func:`linksim.engine._run_images`), so a finished job only computes the chunks it lacks and the
rows it has never change; ``points.jsonl`` records carry the ``chunks`` they hold (absent: 0).
Refused: a finished image that is no longer selected, and added images when set metrics (FID,
KID) are requested (they describe all images of a point at once).

Test-only fault injection: with ``LINKSIM_TEST_KILL_IN_WRITE=<file name>:<n>`` the process
``SIGKILL``\\ s itself halfway through its ``n``-th write to that file (after the first half of the
bytes reached the disk), the worst instant for a crash (``tests/linksim/test_store_crash.py``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from linksim.configs import metric_names
from linksim.errors import LinksimError
from linksim.files import FAULT_ENV, append, atomic_path, atomic_write_text, is_tmp
from linksim.frames import frame_columns, in_time_metrics
from linksim.registry import METHODS, METRICS
from linksim.scenario import scenario_from_dict
from linksim.summary import summarize
from linksim.sweep import expand

__all__ = [
    "ResultsStore", "columns_for", "IMAGE_COLUMNS", "TIMING_COLUMNS", "EXECUTION_KEYS", "FAULT_ENV",
    "atomic_write_text", "atomic_path", "resume_conflicts", "read_points", "SELECTION_KEYS", "IMAGES_FILE",
    "record_chunks", "WEIGHTS_FILE", "weight_conflicts", "method_files",
]

log = logging.getLogger("linksim.store")

#: DESIGN.md §5 columns of image rows (metrics that were not requested stay empty). ``channel_uses``
#: counts the data symbols of one image (the CBR numerator); ``overhead`` the pilot and cyclic-prefix
#: symbols as a fraction of them (0 on flat channels, :attr:`linksim.phy.links.GridInfo.overhead`).
IMAGE_COLUMNS = [
    "method", "kind", "channel", "csnr_db", "cbr", "image", "draw", "psnr", "ms_ssim", "lpips", "dists",
    "outage", "payload_bits", "channel_uses", "overhead", "seconds", "seed",
]
#: Discrete-event columns of image rows (DESIGN.md §6).
TIMING_COLUMNS = ["nfe", "t_arrival", "t_done", "latency_s", "queue_s", "airtime_s", "deadline_missed"]

def columns_for(scenario) -> list[str]:
    """The ``results.csv`` header of ``scenario``: fixed columns, then sweep axes, then what the methods
    declare: image methods (``sends_images`` of their config) the image columns, the metrics, the timing columns, the
    per-frame columns of the traffic (:func:`linksim.frames.frame_columns`) and their ``extra_columns``; other methods (phy studies) their ``result_columns`` and ``seed``."""
    images = [METHODS.get(m.kind) for m in scenario.methods if m.sends_images]
    others = [METHODS.get(m.kind) for m in scenario.methods if not m.sends_images]
    cols = ["method", "kind", "channel", "point"]
    cols += list(scenario.sweep)
    if images:
        names = metric_names(scenario)
        cols += IMAGE_COLUMNS + names + TIMING_COLUMNS + frame_columns(scenario.traffic, in_time_metrics(names))
        for name in names:  # per-image extra columns of a metric (miou: iou_<class>)
            if name in METRICS:
                cols += list(getattr(METRICS.get(name), "extra_columns", ()))
        for cls in images:
            cols += list(getattr(cls, "extra_columns", ()))
    for cls in others:
        cols += list(cls.result_columns) + ["seed"]
    return list(dict.fromkeys(cols))


#: scenario keys that change how a run is executed, never its numbers: a resumed run may differ in them
EXECUTION_KEYS = ("output", "executor", "workers", "threads", "address", "num_gpus")
#: keys whose changes a resume handles job by job (:func:`resume_conflicts`); ``name`` only names things
_PER_JOB_KEYS = ("sweep", "methods", "name")
#: ``data`` keys that only select which images are sent: a resume handles them image chunk by image
#: chunk (:meth:`ResultsStore.image_chunks`)
SELECTION_KEYS = ("limit", "names")
#: the file of the image chunks
IMAGES_FILE = "images.json"
#: the weight table (``{name: sha256}``, :func:`linksim.weights.weight_table`) the folder's results were made with
WEIGHTS_FILE = "weights.json"


#: files up to this size are fingerprinted by sha256, larger ones (an SD checkpoint) by size and mtime
_HASH_LIMIT = 256 * 2**20


def _fingerprint(path: Path) -> str:
    """sha256 of a file (``size=..,mtime_ns=..`` above :data:`_HASH_LIMIT`); of a folder, the sha256
    of its files' relative names and fingerprints."""
    from linksim.weights import sha256_of

    if path.is_dir():
        parts = [f"{p.relative_to(path).as_posix()}={_fingerprint(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
        return "dir:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    st = path.stat()
    return sha256_of(path) if st.st_size <= _HASH_LIMIT else f"size={st.st_size},mtime_ns={st.st_mtime_ns}"


def method_files(methods: list[dict]) -> dict[str, dict[str, str]]:
    """``{method: {key: fingerprint}}`` of every string in a method's settings (``methods``: the
    ``methods`` of a dumped scenario) that names an existing file or folder (a user's ``model:
    my.safetensors``, ``sd_path: sd21/``): the weights the weight table does not know."""
    out: dict[str, dict[str, str]] = {}

    def walk(value, key: str, found: dict) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}", found)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]", found)
        elif isinstance(value, str) and value:
            path = Path(value).expanduser()
            if path.exists():
                found[key] = _fingerprint(path)

    for m in methods:
        found: dict[str, str] = {}
        for k, v in m.items():
            if k not in ("name", "kind"):
                walk(v, k, found)
        if found:
            out[m["name"]] = found
    return out


def weight_conflicts(folder: Path, files_now: dict[str, dict[str, str]], methods=()) -> list[str]:
    """What differs between ``folder/weights.json`` and this run: entries of the weight table
    (``name changed|added|removed (what uses it)``) and, for ``methods``, the files their settings
    name (``files_now``: :func:`method_files` of this run; ``methods[m].model changed``); ``[]`` when
    they agree or the folder predates the file (or its ``files`` record)."""
    from linksim.weights import KNOWN, weight_table

    path = folder / WEIGHTS_FILE
    if not path.is_file():
        return []
    try:
        record = json.loads(path.read_text())
        old = record["weights"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return [f"{WEIGHTS_FILE} (unreadable)"]
    now = weight_table()
    # an added entry counts too: a model name may now resolve to it (the resolution lives in the
    # methods, not in the table), so only an identical table vouches for the finished results
    out = []
    for n in sorted(set(old) | set(now)):
        if old.get(n) != now.get(n):
            how = "added" if n not in old else "removed" if n not in now else "changed"
            out.append(f"{n} {how} ({KNOWN[n].used_by})" if n in KNOWN else f"{n} {how}")
    if isinstance(record.get("files"), dict):
        for m in sorted(methods):
            was, is_ = record["files"].get(m, {}), files_now.get(m, {})
            for key in sorted(set(was) | set(is_)):
                if was.get(key) != is_.get(key):
                    out.append(f"methods[{m}].{key} {'changed' if key in was and key in is_ else 'now names a file' if key in is_ else 'no longer found'}")
    return out


def _complete_part(path: Path) -> tuple[bytes, bool]:
    """``(bytes up to and including the last newline, whether something followed it)``."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end], end < len(data)


def _warn_torn(path: Path) -> None:
    log.warning("%s: dropped a torn last line (a run was killed while writing it); that job is recomputed", path)


def read_points(path: str | Path) -> list[dict]:
    """The records of a ``points.jsonl`` (finished jobs), without a torn last line.

    :raises LinksimError: a line other than the last is not valid JSON (the file was edited or
        damaged; a crash can only tear the end)
    """
    path = Path(path)
    if not path.exists():
        return []
    data, _ = _complete_part(path)
    lines = data.decode("utf-8", errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rec["method"], rec["point"]  # noqa: B018 - a record without its key is damage too
        except (json.JSONDecodeError, KeyError, TypeError):
            if i == len(lines) - 1:  # complete-looking but garbled last line (e.g. zero-filled block)
                _warn_torn(path)
                break
            raise LinksimError(f"{path}: line {i + 1} is not a finished-job record; rerun with --fresh") from None
        out.append(rec)
    return out


def record_chunks(rec: dict) -> set[int]:
    """The image chunks a ``points.jsonl`` record holds (records without ``chunks``: chunk 0)."""
    return {int(c) for c in rec.get("chunks") or [0]}


# -- resume identity -------------------------------------------------------------------------------
def _diff_keys(a: Any, b: Any, prefix: str) -> list[str]:
    """Dotted key paths where ``a`` and ``b`` differ (lists are compared whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in dict.fromkeys([*a, *b]):
            p = f"{prefix}.{k}" if prefix else str(k)
            out += [p] if (k not in a or k not in b) else _diff_keys(a[k], b[k], p)
        return out
    return [] if a == b else [prefix]


def _revalidated(dumped: dict):
    """The saved scenario re-validated with today's models (keys added to linksim since the folder
    was written get their defaults, so an upgrade does not orphan old runs); ``None`` if it no
    longer validates."""
    try:
        return scenario_from_dict(dumped, check_points=False)
    except LinksimError:
        return None


def resume_conflicts(old_dumped: dict, new, finished: set[tuple[str, str]]) -> list[str]:
    """Why the finished jobs of a folder cannot be reused under scenario ``new`` ([] = they can).

    :param old_dumped: the folder's ``scenario.yaml`` as a mapping
    :param new: the validated :class:`linksim.scenario.Scenario` of this run
    :param finished: ``(method, point key)`` of the folder's finished jobs
    :output: the key paths that differ (``data.limit``, ``methods[a].scale``, ``sweep: point 'x=1'``)
    """
    old = _revalidated(old_dumped)
    if old is None:
        return ["scenario.yaml (no longer a valid scenario)"]
    a, b = old.dump(), new.dump()
    for d in (a, b):
        if isinstance(d.get("data"), dict):
            d["data"] = {k: v for k, v in d["data"].items() if k not in SELECTION_KEYS}
    skip = set(EXECUTION_KEYS) | set(_PER_JOB_KEYS)
    out = _diff_keys({k: v for k, v in a.items() if k not in skip},
                     {k: v for k, v in b.items() if k not in skip}, "")
    old_m = {m["name"]: m for m in a["methods"]}
    new_m = {m["name"]: m for m in b["methods"]}
    keys = {p.key for p in expand(new)}
    for name in dict.fromkeys(m for m, _ in finished):
        if name not in new_m:
            out.append(f"methods: '{name}' (finished here) is not in the scenario")
        elif name in old_m:
            out += _diff_keys(old_m[name], new_m[name], f"methods[{name}]")
    gone = sorted({p for _, p in finished if p not in keys})
    out += [f"sweep: finished point '{p}' is not in the scenario" for p in gone[:3]]
    if len(gone) > 3:
        out.append(f"sweep: {len(gone) - 3} more finished points")
    return list(dict.fromkeys(out))


class ResultsStore:
    """The output folder of one scenario run.

    :param out_dir: the folder (created)
    :param scenario: the validated scenario
    :param fresh: start over (delete previous results) instead of resuming
    :raises LinksimError: resuming into a folder whose finished jobs this scenario would compute
        differently (the message names the keys), or whose ``results.csv`` has columns this
        scenario does not write
    """

    def __init__(self, out_dir: str | Path, scenario, fresh: bool = False):
        self.dir = Path(out_dir)
        self.scenario = scenario
        self.results = self.dir / "results.csv"
        self.points = self.dir / "points.jsonl"
        self.columns = columns_for(scenario)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_tmp()
        resolved = scenario.dump()
        old = self.dir / "scenario.yaml"
        files = method_files(resolved["methods"])  # fingerprints of the files the methods name (hashed once)
        if fresh:
            for p in (self.results, self.points, self.dir / "summary.csv", self.dir / "run.json",
                      self.dir / "report.md", self.dir / "report.tex", self.dir / IMAGES_FILE,
                      self.dir / WEIGHTS_FILE):
                p.unlink(missing_ok=True)
            # saved images of an earlier run would otherwise end up in this run's report grids
            for d in ("figures", "recon"):
                shutil.rmtree(self.dir / d, ignore_errors=True)
        elif old.exists() and self.points.exists():
            try:
                saved = yaml.safe_load(old.read_text()) or {}
            except yaml.YAMLError:
                saved = {}
            finished = {(r["method"], r["point"]) for r in read_points(self.points)}
            differ = resume_conflicts(saved, scenario, finished) if finished else []
            if differ:
                raise LinksimError(
                    f"{self.dir}: holds results of a different scenario (differs in: {', '.join(differ)}); "
                    f"rerun with --fresh to overwrite or choose another --output"
                )
            # the scenario alone does not fix the numbers of image methods: their weights do too
            image_methods = {m.name for m in scenario.methods if m.sends_images}
            done = {m for m, _ in finished if m in image_methods}
            changed = weight_conflicts(self.dir, files, done) if done else []
            if changed:
                more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                raise LinksimError(
                    f"{self.dir}: holds results made with other weights (differs: {'; '.join(changed[:3])}{more}); "
                    f"rerun with --fresh to overwrite or choose another --output"
                )
        atomic_write_text(old, yaml.safe_dump({k: v for k, v in resolved.items() if k != "output"},
                                              sort_keys=False))
        self._write_weights(files)
        self._recover()

    def _write_weights(self, files: dict[str, dict[str, str]]) -> None:
        """Record the weight table and the files the methods name (``files``), unless finished
        results of an older folder (without the file) are resumed: their weights are unknown, and
        writing today's table would vouch for them."""
        from linksim.weights import weight_table

        path = self.dir / WEIGHTS_FILE
        if path.is_file() or not read_points(self.points):
            record = {"weights": weight_table(), "files": files}
            atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")

    def _remove_stale_tmp(self) -> None:
        """Temporary files of a killed run (never renamed into place)."""
        for folder in (self.dir, self.dir / "figures"):
            if folder.is_dir():
                for p in folder.iterdir():
                    if p.is_file() and is_tmp(p):
                        p.unlink(missing_ok=True)
        if (self.dir / "recon").is_dir():
            for p in (self.dir / "recon").rglob(".*"):
                if p.is_file() and is_tmp(p):
                    p.unlink(missing_ok=True)

    # -- resume ---------------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """The ``points.jsonl`` records of the finished jobs (a torn last line is left out)."""
        return read_points(self.points)

    def finished(self) -> set[tuple[str, str]]:
        """``(method, point key)`` of every job with a finished record (for image methods: at least
        one image chunk; :meth:`done_chunks` says which)."""
        return {(r["method"], r["point"]) for r in self.records()}

    def done_chunks(self) -> dict[tuple[str, str], set[int]]:
        """``{(method, point key): finished image chunks}``."""
        out: dict[tuple[str, str], set[int]] = {}
        for r in self.records():
            out.setdefault((r["method"], r["point"]), set()).update(record_chunks(r))
        return out

    def _saved_chunks(self) -> list[list[str]] | None:
        path = self.dir / IMAGES_FILE
        if not path.is_file():
            return None
        try:
            chunks = json.loads(path.read_text())["chunks"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise LinksimError(f"{path}: not an image-chunk file; rerun with --fresh") from None
        return [list(map(str, c)) for c in chunks]

    def image_chunks(self, names: list[str]) -> list[list[str]]:
        """The image chunks of this run, given the images the scenario selects now (in order).

        Chunk 0 is the images of the first run (``images.json``; a folder from before that file
        takes them from its first finished job's rows); images selected now and in no chunk become
        a new chunk, when finished image jobs exist (else the chunks start over as ``[names]``).

        :raises LinksimError: a finished job's image is no longer selected
        """
        chunks = self._saved_chunks()
        finished_images = self._finished_images()
        if not finished_images:
            chunks = [list(names)]
        else:
            if chunks is None:  # a folder from before images.json: the order of its first job's rows
                chunks = [finished_images]
            selected = set(names)
            gone = [n for c in chunks for n in c if n not in selected]
            if gone:
                raise LinksimError(
                    f"{self.dir}: holds results of a different scenario (differs in: data: finished image(s) "
                    f"{', '.join(repr(n) for n in gone[:3])} no longer selected); rerun with --fresh to overwrite "
                    "or choose another --output")
            known = {n for c in chunks for n in c}
            new = [n for n in names if n not in known]
            if new:
                chunks.append(new)
        atomic_write_text(self.dir / IMAGES_FILE, json.dumps({"chunks": chunks}, indent=1) + "\n")
        return chunks

    def _finished_images(self) -> list[str]:
        """Image names of the finished image rows, in the order of their first appearance."""
        if not self.results.exists() or self.results.stat().st_size == 0:
            return []
        with self.results.open(newline="", encoding="utf-8") as f:
            seen = dict.fromkeys(r["image"] for r in csv.DictReader(f) if r.get("image"))
        return list(seen)

    def _truncate_torn(self, path: Path) -> bytes:
        """Cut ``path`` back to its last complete line (one warning if something was cut)."""
        data, torn = _complete_part(path)
        if torn:
            _warn_torn(path)
            with path.open("rb+") as f:
                f.truncate(len(data))
                os.fsync(f.fileno())
        return data

    def _recover(self) -> None:
        """Make the folder consistent after a crash at any instant.

        ``points.jsonl``: a torn last line is dropped. ``results.csv``: a torn last row is dropped,
        rows of jobs that did not finish are dropped, a header this scenario extends (a new method
        with extra columns, a column added to linksim) is widened with empty cells. A finished job
        whose rows are missing is not finished.
        """
        if self.points.exists():
            self._truncate_torn(self.points)
            recs = read_points(self.points)  # may still drop a garbled last line: rewritten below
        else:
            recs = []
        short = False  # a complete row with the wrong number of cells, or refused (damage): dropped and rewritten
        if not self.results.exists() or self.results.stat().st_size == 0:
            rows, fieldnames = [], self.columns
        else:
            data = self._truncate_torn(self.results)
            text = data.decode("utf-8", errors="replace")
            reader = csv.reader(io.StringIO(text, newline=""))
            table, refused = [], False
            while True:  # row by row: a line the csv module refuses (a field over its size limit) is damage
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    refused = True
                    if not table:  # the header: no row below it can be read
                        break
                    continue
                table.append(row)
            fieldnames = table[0] if table else self.columns
            rows = [dict(zip(fieldnames, r)) for r in table[1:] if len(r) == len(fieldnames)]
            short = refused or len(rows) != max(len(table) - 1, 0)
            if short:
                _warn_torn(self.results)
        extra = [c for c in fieldnames if c not in self.columns]
        if extra:
            raise LinksimError(
                f"{self.results}: has columns this scenario does not write ({', '.join(extra)}); rerun with --fresh"
            )
        # a row is kept when the record of its job holds the row's image chunk (a killed job that
        # added a chunk to a finished point leaves rows of that chunk without a record)
        chunk_of = {n: c for c, names in enumerate(self._saved_chunks() or []) for n in names}
        done = {(r["method"], r["point"], c) for r in recs for c in record_chunks(r)}

        def job_chunk(r):
            return (r.get("method"), r.get("point"), chunk_of.get(r.get("image"), 0))

        keep = [r for r in rows if job_chunk(r) in done]
        with_rows = {job_chunk(r) for r in keep}
        good = [r for r in recs if all((r["method"], r["point"], c) in with_rows for c in record_chunks(r))]
        if len(good) != len(recs) or self.points.exists() and len(good) != _count_lines(self.points):
            atomic_write_text(self.points, "".join(json.dumps(r) + "\n" for r in good))
        if fieldnames != self.columns or len(keep) != len(rows) or short or not self.results.exists() \
                or self.results.stat().st_size == 0:
            buf = io.StringIO()
            w = csv.DictWriter(buf, self.columns, restval="")
            w.writeheader()
            w.writerows(keep)
            atomic_write_text(self.results, buf.getvalue())

    # -- writing --------------------------------------------------------------------------------
    def append(self, method: str, point: str, result, chunks: list[int] | None = None) -> None:
        """Store one finished job durably: its rows, then its ``points.jsonl`` record.

        :param result: :class:`linksim.engine.JobResult`
        :param chunks: the image chunks the job computed (``None``: chunk 0 / a phy study)
        """
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.columns, restval="", extrasaction="raise")
        for row in result.rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
        append(self.results, buf.getvalue())
        rec = {"method": method, "point": point, "seconds": result.seconds,
               "point_metrics": result.point_metrics, "unavailable": result.unavailable,
               "metrics": getattr(result, "metrics", {})}
        if chunks and list(chunks) != [0]:
            rec["chunks"] = list(chunks)
        append(self.points, json.dumps(rec) + "\n")

    def sort_rows(self, order: list[tuple[str, str]]) -> None:
        """Rewrite ``results.csv`` with its rows in job order (``order``: the run's ``(method, point
        key)`` pairs as planned), keeping each job's rows as appended: parallel executors append
        jobs as they finish, so without this two runs of one scenario differ in row order. A stable
        sort, one atomic rewrite, and none when the rows are in order already."""
        if not self.results.exists():
            return
        with open(self.results, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
        if header is None or not {"method", "point"} <= set(header):
            return
        im, ip = header.index("method"), header.index("point")
        rank = {key: i for i, key in enumerate(order)}
        keyed = [rank.get((r[im], r[ip]), len(rank)) for r in rows]
        if keyed == sorted(keyed):
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(r for _, r in sorted(zip(keyed, rows), key=lambda kr: kr[0]))
        atomic_write_text(self.results, buf.getvalue())

    def read(self):
        """``results.csv`` as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.results)

    def write_summary(self) -> Path:
        """``summary.csv``: means and 95 % intervals per method × point (phy rows as they are)."""
        import pandas as pd

        df = self.read()
        path = self.dir / "summary.csv"
        if df.empty:
            atomic_write_text(path, df.to_csv(index=False))
            return path
        point_metrics = {(r["method"], r["point"]): r.get("point_metrics") or {} for r in self.records()}
        parts = []
        phy = df[df["image"].isna()] if "image" in df else df
        if not phy.empty:
            parts.append(phy.dropna(axis=1, how="all"))
        if "image" in df:
            img = df[df["image"].notna()]
            keys = ["method", "kind", "channel", "point"] + [c for c in self.scenario.sweep if c in img]
            # means and intervals over images x draws, outage rate, CRC failures, means without
            # outage images (linksim.summary); set metrics (FID, KID) from points.jsonl, one per point
            out = summarize(img, keys, point_metrics, metrics=metric_names(self.scenario))
            if len(out):
                parts.append(out)
        atomic_write_text(path, pd.concat(parts, ignore_index=True).to_csv(index=False))
        return path

    def write_run_json(self, info: dict[str, Any]) -> Path:
        """``run.json``: versions, device, seed, timings, ``metrics``, ``unavailable_metrics`` (merged
        with ``info``); the metric records are gathered from every finished job, resumed ones too."""
        import platform

        versions = {"python": platform.python_version()}
        for mod in ("torch", "sionna", "numpy", "simpy"):
            try:
                versions[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001 - a missing optional package is recorded as such
                versions[mod] = None
        from importlib import metadata

        versions["linksim"] = metadata.version("linksim")  # the installed distribution's version
        unavailable: dict = {}
        metrics: dict = {}
        for rec in self.records():
            unavailable.update(rec.get("unavailable") or {})
            metrics.update(rec.get("metrics") or {})
        record = {"versions": versions, "seed": self.scenario.seed, "metrics": metrics,
                  "unavailable_metrics": unavailable, **info}
        return atomic_write_text(self.dir / "run.json", json.dumps(record, indent=2, default=str))


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())
