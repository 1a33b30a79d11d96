"""Sweep points and the executors that run them.

:func:`expand` turns the scenario's ``sweep:`` axes into the cartesian product of
:class:`SweepPoint` objects. Each point has a stable key (``cbr=1/24|csnr_db=10``, axes sorted by
name, so the order of the axes in the YAML does not matter), the resolved channel config, and a
seed derived from the scenario seed and the key alone — reruns, reordering and parallel execution
give identical numbers.

**Common random numbers.** The seed of a point is :func:`draw_seed`: the hash of its key *without*
the axes that do not change what is drawn (:data:`DRAW_NEUTRAL_KEYS`: ``channel.estimator``,
``channel.equalizer``, ``channel.clip_ratio``). Every method at a point gets that seed, and every
value of such an axis too, so at one point image ``i`` (draw ``k``) sees the same channel
realisation and the same unit noise for every method and every estimator/equaliser: differences
between them are paired (``report.md`` tabulates them), not the luck of other draws.

Saved reconstructions live in ``recon/<method>/<point folder>/``; :func:`point_dirname` names the
folder from the point's axis values and :func:`parse_point_dirname` reads it back (the one place
that knows the spelling; :func:`safe_name` makes any label a file name).

Executors run independent (method, point) jobs and hand each finished job's rows back to the
caller, which stores them durably before anything else is recorded:

* ``inprocess`` (default): one after the other, in this process;
* ``process``: a :class:`concurrent.futures.ProcessPoolExecutor` with ``workers`` processes;
* ``ray``: Ray tasks on a local Ray instance bound to 127.0.0.1 (:func:`ray_init`;
  ``pip install 'linksim[ray]'``).

Both pools keep at most ``workers`` jobs submitted (:func:`_run_bounded`): when a job fails, no
further job starts, the running ones finish and are stored, and the error is re-raised.
"""

from __future__ import annotations

import contextlib

import hashlib
import ipaddress
import itertools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote, unquote

from linksim.errors import LinksimError

__all__ = ["SweepPoint", "Job", "expand", "point_seed", "draw_seed", "sub_seed", "check_points", "run_jobs",
           "format_value", "ray_init", "DRAW_NEUTRAL_KEYS", "safe_name", "point_dirname", "parse_point_dirname", "parse_key"]

#: channel keys that change how the receiver processes what it got, never what is drawn (the channel
#: realisation, the pilots, the interleaver, the noise): points that differ only in them share seeds
DRAW_NEUTRAL_KEYS = ("estimator", "equalizer", "clip_ratio")


def format_value(value: Any) -> str:
    """Stable text of an axis value (``Fraction(1, 24)`` -> ``1/24``, ``10.0`` -> ``10``)."""
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)


def point_seed(scenario_seed: int, key: str) -> int:
    """Deterministic 63-bit seed of a point: ``sha256("<seed>|<key>")`` (independent of order).

    >>> point_seed(0, "csnr_db=10") == point_seed(0, "csnr_db=10")
    True
    """
    return sub_seed(int(scenario_seed), key)


def draw_seed(scenario_seed: int, values) -> int:
    """The seed of a point's random draws: :func:`point_seed` of its key without the
    :data:`DRAW_NEUTRAL_KEYS` axes (common random numbers across estimators and equalisers).

    :param values: ``((axis, value), ...)`` of the point

    >>> draw_seed(0, (("csnr_db", 10.0), ("channel.estimator", "ls"))) == draw_seed(0, (("csnr_db", 10.0),))
    True
    """
    kept = [(a, v) for a, v in values if not (a.startswith("channel.") and a.split(".", 1)[1] in DRAW_NEUTRAL_KEYS)]
    return point_seed(scenario_seed, "|".join(f"{a}={format_value(v)}" for a, v in sorted(kept)))


def parse_key(key: str) -> dict[str, str]:
    """``"cbr=1/24|csnr_db=10"`` -> ``{"cbr": "1/24", "csnr_db": "10"}`` (values as text)."""
    return dict(part.split("=", 1) for part in key.split("|") if "=" in part)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: Any) -> str:
    """A file-name-safe spelling of any label: runs of other characters become ``-``
    (``"ofdm/lmmse"`` -> ``"ofdm-lmmse"``, ``"tdl-C/ls"`` -> ``"tdl-C-ls"``); never empty.

    >>> safe_name("ofdm/lmmse"), safe_name("a b:c"), safe_name("")
    ('ofdm-lmmse', 'a-b-c', '_')
    """
    return _UNSAFE.sub("-", str(text)).strip("-") or "_"


def point_dirname(values) -> str:
    """The folder of one sweep point's saved images (DESIGN.md §5: ``<csnr_db>_<cbr>``), then one
    ``,<axis>=<value>`` per further axis, sorted, percent-encoded (any value is a safe name):
    ``10_1-24``, ``0_1-48,channel.estimator=ls``, ``5_1-24,channel.kind=tdl,channel.tdl_model=C``.

    :param values: ``{axis: value}`` or ``((axis, value), ...)``; values as in the point key
        (numbers, :class:`~fractions.Fraction`, text)
    """
    vals = {a: format_value(v) if not isinstance(v, str) else v for a, v in dict(values).items()}
    head = f"{vals.pop('csnr_db', vals.pop('ebno_db', 'none'))}_{vals.pop('cbr', 'none').replace('/', '-')}"
    tail = "".join(f",{a}={quote(v, safe='')}" for a, v in sorted(vals.items()))
    return head + tail


def parse_point_dirname(name: str) -> dict[str, str] | None:
    """Inverse of :func:`point_dirname`: ``{axis: value text}`` (``csnr_db``, ``cbr`` as ``"a/b"`` or
    a decimal, further axes); ``None`` when ``name`` is not a point folder. Also reads the older
    spellings ``10_0.0416667`` and ``10.0_1-24``.

    >>> parse_point_dirname("0_1-48,channel.estimator=ls")
    {'csnr_db': '0', 'cbr': '1/48', 'channel.estimator': 'ls'}
    """
    head, *rest = name.split(",")
    m = re.fullmatch(r"(-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:dB)?_(\d+(?:-\d+)?|\d*\.?\d+(?:[eE][+-]?\d+)?)", head)
    if not m:
        return None
    out = {"csnr_db": format_value(float(m.group(1))), "cbr": m.group(2).replace("-", "/")}
    for part in rest:
        axis, eq, value = part.partition("=")
        if not eq:
            return None
        out[axis] = unquote(value)
    return out


def sub_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed for a named sub-stream of ``seed``: ``sha256("<seed>|<part>|...")`` (``sub_seed(s, "noise", 3)``)."""
    text = "|".join(map(str, (seed, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class SweepPoint:
    """One combination of sweep-axis values.

    :param key: stable text, ``axis=value`` pairs sorted by axis and joined by ``|`` (``""`` when
        nothing is swept)
    :param values: ``((axis, value), ...)`` in the scenario's axis order
    :param channel: the resolved :class:`linksim.channels.ChannelConfig` of this point
    :param seed: the seed of the point's draws (:func:`draw_seed`: the same for points that differ
        only in :data:`DRAW_NEUTRAL_KEYS`)
    :param index: position in the expansion (for display only; never used for numbers)
    """

    key: str
    values: tuple[tuple[str, Any], ...]
    channel: Any
    seed: int
    index: int = 0

    def get(self, axis: str, default: Any = None) -> Any:
        """The value of ``axis`` at this point, or ``default`` when it is not swept."""
        return dict(self.values).get(axis, default)

    @property
    def csnr_db(self) -> float | None:
        return self.get("csnr_db")

    @property
    def ebno_db(self) -> float | None:
        return self.get("ebno_db")

    @property
    def cbr(self) -> Fraction | None:
        return self.get("cbr")


@dataclass(frozen=True)
class Job:
    """One unit of work: one method (index into ``scenario.methods``) at one point.

    :param chunks: for image methods, the image chunks to compute, ``((index, names), ...)``
        (:meth:`linksim.store.ResultsStore.image_chunks`); ``()``: every image, as chunk 0
    """

    method_index: int
    method: str
    point: SweepPoint
    chunks: tuple = ()

    @property
    def key(self) -> tuple[str, str]:
        """``(method name, point key)`` — what the results store uses to resume."""
        return (self.method, self.point.key)


def _resolve_channel(scenario, overrides: dict[str, Any], where: dict[str, str]):
    """The channel config with ``channel.<key>`` overrides applied, validated for its kind."""
    from pydantic import ValidationError

    from linksim.registry import CHANNELS
    from linksim.scenario import _KeyProblem

    raw = scenario.channel.model_dump()
    raw.update(overrides)
    kind = raw["kind"]
    if kind not in CHANNELS:
        raise _KeyProblem(where.get("kind", "channel.kind"),
                          f"unknown channel kind {kind!r}; allowed: {', '.join(CHANNELS.names())}")
    model = CHANNELS.config(kind)
    if "kind" in overrides:  # a swept kind: base keys that this kind does not have do not apply
        raw = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        key = str(e["loc"][0]) if e["loc"] else "kind"
        path = where.get(key, f"channel.{key}")
        raise _KeyProblem(path, f"{e['msg']} (channel kind {kind!r}); got {e.get('input')!r}") from None


def expand(scenario) -> list[SweepPoint]:
    """All sweep points of ``scenario`` (cartesian product of its axes, first axis slowest).

    :param scenario: a validated :class:`linksim.scenario.Scenario`
    :output: ``prod(len(axis))`` points (one point when nothing is swept)
    """
    axes = list(scenario.sweep.items())
    points = []
    for index, combo in enumerate(itertools.product(*[range(len(v)) for _, v in axes])):
        values = tuple((name, vals[j]) for (name, vals), j in zip(axes, combo))
        key = "|".join(f"{a}={format_value(v)}" for a, v in sorted(values))
        overrides = {a.split(".", 1)[1]: v for a, v in values if a.startswith("channel.")}
        where = {a.split(".", 1)[1]: f"sweep.{a}[{j}]" for (a, _), j in zip(axes, combo) if a.startswith("channel.")}
        channel = _resolve_channel(scenario, overrides, where)
        points.append(SweepPoint(key, values, channel, draw_seed(scenario.seed, values), index))
    return points


def jobs(scenario, points: list[SweepPoint] | None = None) -> list[Job]:
    """Every (method, point) job, methods outermost (finishes one method's curve first)."""
    points = expand(scenario) if points is None else points
    return [Job(i, m.name, p) for i, m in enumerate(scenario.methods) for p in points]


def check_points(scenario) -> None:
    """Check every method at every point before any work (called by scenario validation).

    Image methods: ``N = ρ·3·H·W`` must be an integer and fit the channel's grid
    (:func:`linksim.phy.chains.grid_info`); then each method's own ``check``.

    :raises linksim.scenario._KeyProblem: with the key path of the offending value
    """
    from linksim.engine import operating_point
    from linksim.registry import METHODS
    from linksim.scenario import _KeyProblem
    from linksim.studies import Study

    points = expand(scenario)
    cbrs = scenario.sweep.get("cbr", [])
    _check_data(scenario)
    for i, m in enumerate(scenario.methods):
        cls = METHODS.get(m.kind)
        is_study = isinstance(cls, type) and issubclass(cls, Study)
        if not is_study and scenario.data is None:
            raise _KeyProblem(f"methods[{i}].kind", f"method kind {m.kind!r} transmits images and needs a data: section")
        if not is_study and "cbr" not in scenario.sweep and not getattr(m, "cbr", None):
            raise _KeyProblem("sweep.cbr", f"method {m.name!r} transmits images: sweep a cbr axis")
        for p in points:
            op = operating_point(scenario, p)
            if not is_study and p.cbr is not None:
                j = cbrs.index(p.cbr)
                h, w = scenario.data.shape
                n = p.cbr * 3 * h * w
                if n.denominator != 1:
                    raise _KeyProblem(
                        f"sweep.cbr[{j}]",
                        f"CBR {p.cbr} gives N = {n} symbols for {h}x{w} images; N = cbr·3·H·W must be an integer",
                    )
                try:
                    from linksim.phy.chains import grid_info

                    grid_info(p.channel.link_config(), int(n))
                except ValueError as err:
                    raise _KeyProblem(
                        f"sweep.cbr[{j}]", f"CBR {p.cbr} (N = {n}) does not fit the {p.channel.kind} grid: {err}"
                    ) from None
            try:
                cls.check(m, op)
            except ValueError as err:
                raise _KeyProblem(f"methods[{i}]", f"{m.name} at point '{p.key}': {err}") from None


def _check_data(scenario) -> None:
    """The images load (an empty folder, a corrupt or too small file, an unknown name fail here,
    before any work, not mid-run); only for scenarios with image methods."""
    from linksim.engine import has_image_methods
    from linksim.errors import DataError
    from linksim.scenario import _KeyProblem

    if scenario.data is None or not has_image_methods(scenario):
        return
    from linksim.data import load_images

    try:
        load_images(scenario.data)
    except DataError as err:
        key = "data.folder" if scenario.data.source == "folder" else "data.names"
        raise _KeyProblem(key, str(err)) from None


def _run_job_remote(scenario_data: dict, job: Job, device: str, out_dir: str, strict: bool = False) -> Any:
    """Worker entry point (process pool / Ray): rebuild the scenario and run one job.

    The worker's images and metric objects are built on its first job and reused for the next ones
    (:func:`linksim.engine.worker_resources`).
    """
    from linksim.engine import run_job, worker_resources
    from linksim.scenario import scenario_from_dict

    scenario = scenario_from_dict(scenario_data, check_points=False)
    with torch_threads(scenario.threads):
        resources = worker_resources(scenario, device, out_dir, strict)
        return run_job(scenario, job, device=device, resources=resources)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (``None``: unchanged); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_jobs(
    scenario,
    todo: list[Job],
    device: str,
    on_done: Callable[[Job, Any], None],
    progress: Callable[[Job, dict], None] | None = None,
    resources: Any = None,
) -> None:
    """Run ``todo`` on the scenario's executor; ``on_done(job, result)`` as each job finishes.

    ``on_done`` runs in this process, in completion order (the store writes there). With the
    process and Ray executors, per-batch ``progress`` is not forwarded, only job completion.

    :param resources: the run's :class:`linksim.engine.RunResources` (images and metrics shared by
        the in-process jobs; its output folder and ``strict`` flag go to the workers, which build
        their own once). Default: a new one for ``scenario`` on ``device``.
    """
    from linksim.engine import RunResources, run_job

    if resources is None:
        resources = RunResources(scenario, device)
    if scenario.executor == "inprocess" or len(todo) <= 1:
        with torch_threads(scenario.threads):
            for job in todo:
                on_done(job, run_job(scenario, job, device=device, progress=progress, resources=resources))
        return
    data = scenario.model_dump(mode="python")
    data["sweep"] = {k: [str(v) for v in vals] if k == "cbr" else vals for k, vals in scenario.sweep.items()}
    args = (device, str(resources.out_dir), resources.strict)
    if scenario.executor == "process":
        import concurrent.futures as cf
        import multiprocessing as mp

        # spawn: a forked child would inherit torch's thread pools and locks in an unknown state.
        with cf.ProcessPoolExecutor(scenario.workers, mp_context=mp.get_context("spawn")) as pool:
            _run_bounded(todo, scenario.workers, lambda job: pool.submit(_run_job_remote, data, job, *args),
                         lambda running: cf.wait(running, return_when=cf.FIRST_COMPLETED)[0],
                         lambda fut: fut.result(), on_done)
        return
    ray = ray_init(scenario.workers)
    remote = ray.remote(num_cpus=1, max_retries=0)(_run_job_remote)
    _run_bounded(todo, scenario.workers, lambda job: remote.remote(data, job, *args),
                 lambda running: ray.wait(running, num_returns=1)[0], _ray_result, on_done)


def _run_bounded(todo: list[Job], width: int, submit: Callable[[Job], Any], wait: Callable[[list], Iterable],
                 result: Callable[[Any], Any], on_done: Callable[[Job, Any], None]) -> None:
    """Keep at most ``width`` jobs submitted; store each finished one; stop submitting at a failure.

    Submitting only as many jobs as there are workers makes "pending jobs are cancelled" exact for
    every executor: after the first failure no further job is started, the jobs already running
    finish and are stored through ``on_done``, and then the first error is re-raised (a rerun
    computes only what is missing).

    :param submit: ``submit(job) -> handle`` (a future, a Ray object ref)
    :param wait: ``wait(handles) -> finished handles`` (at least one; blocks)
    :param result: ``result(handle) -> job result``; raises the job's exception
    """
    queue = list(reversed(todo))
    running: dict[Any, Job] = {}
    error: BaseException | None = None
    while running or (queue and error is None):
        while queue and error is None and len(running) < width:
            job = queue.pop()
            running[submit(job)] = job
        for handle in wait(list(running)):
            job = running.pop(handle)
            try:
                value = result(handle)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the running jobs are stored
                error = error or exc
                continue
            on_done(job, value)
    if error is not None:
        raise error


def ray_init(workers: int):
    """The local Ray instance of ``executor: ray``, started on first use with ``num_cpus=workers``,
    bound to loopback only (127.0.0.1, no dashboard), and reused by later runs in this process.

    Ray replaces a requested 127.0.0.1 by the machine's outward address on Linux (its
    ``ray_constants.ENABLE_RAY_CLUSTER``, read when the node address is resolved); that switch is
    turned off while Ray starts, and the address Ray ends up on is checked. ``RAY_ADDRESS`` is
    ignored: linksim never joins another cluster.

    :output: the ``ray`` module
    :raises LinksimError: ``ray`` is not installed, or a Ray instance that is not on loopback is
        already initialised in this process
    """
    import logging

    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise LinksimError("executor: ray needs the 'ray' package: pip install 'linksim[ray]'") from None
    if not ray.is_initialized():
        cluster = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level=logging.WARNING, object_store_memory=256 * 2**20)
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = cluster
    ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(ip).is_loopback:
        raise LinksimError(f"executor: ray: the Ray instance of this process is at {ip}, not on loopback; "
                           "call ray.shutdown() first (linksim starts its own on 127.0.0.1)")
    return ray


def _ray_result(ref) -> Any:
    """``ray.get(ref)``, with a task's exception re-raised as itself: the same one-line linksim
    error as in-process, not Ray's ``RayTaskError`` carrying the worker's traceback."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, BaseException):
            raise err.cause from None
        raise


def iter_keys(rows: Iterable[dict]) -> Iterator[tuple[str, str]]:
    """``(method, point)`` keys of stored rows."""
    for r in rows:
        yield (r["method"], r["point"])
