"""The discrete-event core (DESIGN.md §6), on SimPy.

One job = one method at one sweep point. Its messages (images, or for phy studies one block of
Monte-Carlo work) flow through three SimPy processes::

    source --(t_arrival, traffic model)--> transmitter --(channel busy for the airtime)-->
        receiver queue --(server; service time = measured decode time)--> done (t_done)

* **source**: emits message ``i`` at ``t_arrival[i]`` (``batch``: all at 0; ``periodic``; ``poisson``).
* **transmitter**: the channel is a ``simpy.Resource`` of capacity 1; a message holds it for its
  airtime (:func:`airtime_s`: whole OFDM slots, symbol duration including the cyclic prefix).
  The channel realization a message sees is indexed by its coherence interval
  ``floor(t_tx_start / coherence_time_s)`` (per message when no coherence time is given).
* **receiver**: a server taking up to ``max_batch`` waiting messages (``batch`` traffic: all of
  them, a plain Monte-Carlo batch); its service time is the measured wall-clock time of the
  decode (or a model of it, ``service_time``).

Every message carries its timestamps, so latency, queueing delay and deadline misses are results
columns like any metric. The engine does not know what a method does: :func:`simulate` takes a
``serve(batch) -> (results, seconds)`` callable; :func:`run_job` builds it for image methods
(:class:`linksim.codecs.base.ImageMethod`) and phy studies (:class:`linksim.studies.Study`).
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import simpy

from linksim.errors import LinksimError
from linksim.sweep import sub_seed

__all__ = [
    "Message",
    "JobResult",
    "arrival_times",
    "airtime_s",
    "simulate",
    "operating_point",
    "resolve_device",
    "run_job",
    "run_scenario",
    "sub_seed",
    "RunResources",
    "DEFAULT_METRICS",
    "metric_names",
    "recon_folder",
    "worker_resources",
]

#: Metrics of a scenario that names none (``metrics:`` absent or empty): cheap, no weight files.
DEFAULT_METRICS = ("psnr", "ms_ssim")
#: Images per metric call: bounds the memory of the backbone metrics (LPIPS, DISTS, Inception).
METRIC_CHUNK = 16


@dataclass
class Message:
    """One message and its timestamps [s, simulated time].

    :param id: position in the source's order
    :param payload: what the serve callable needs (an image index, a work item)
    :param t_arrival: when the source emits it
    :param airtime_s: how long it occupies the channel
    :param deadline_s: latency budget (``None``: none)
    """

    id: int
    payload: Any
    t_arrival: float
    airtime_s: float = 0.0
    deadline_s: float | None = None
    t_tx_start: float = math.nan
    t_tx_end: float = math.nan
    t_rx_start: float = math.nan
    t_done: float = math.nan
    channel_block: int = 0
    result: Any = None

    @property
    def latency_s(self) -> float:
        """``t_done - t_arrival``."""
        return self.t_done - self.t_arrival

    @property
    def queue_s(self) -> float:
        """Time spent waiting: for the channel plus for the receiver."""
        return (self.t_tx_start - self.t_arrival) + (self.t_rx_start - self.t_tx_end)

    @property
    def deadline_missed(self) -> bool | None:
        """``latency_s > deadline_s`` (``None`` without a deadline)."""
        return None if self.deadline_s is None else bool(self.latency_s > self.deadline_s)


def arrival_times(traffic, num: int, seed: int) -> list[float]:
    """Arrival times [s] of ``num`` messages under the traffic model.

    :param traffic: :class:`linksim.scenario.TrafficConfig` (``kind``, ``interval_s``, ``rate_hz``)
    :param seed: seeds the Poisson process
    :output: non-decreasing list, first arrival at 0 (``batch``: all 0)
    """
    if traffic.kind == "batch":
        return [0.0] * num
    if traffic.kind == "periodic":
        return [i * traffic.interval_s for i in range(num)]
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(num):
        out.append(t)
        t += rng.expovariate(traffic.rate_hz)
    return out


def airtime_s(grid, channel, numerology) -> float:
    """Airtime [s] of one message laid out as ``grid``.

    OFDM (``grid.subcarriers > 0``): ``num_frames · (data + pilot symbols)`` OFDM symbols, each
    ``(M + cp) / (M · Δf)`` long, rounded up to whole slots of ``symbols_per_slot`` symbols.
    Flat channels: ``num_data / symbol_rate_hz`` (single carrier, no pilots).

    :param grid: :class:`linksim.phy.links.GridInfo`
    :param channel: the point's channel config (``subcarrier_spacing`` [Hz], ``cp`` for OFDM)
    :param numerology: :class:`linksim.scenario.NumerologyConfig`
    """
    if getattr(grid, "subcarriers", 0):
        m = grid.subcarriers
        cp = grid.cp_samples // max(grid.num_frames * (grid.data_symbols + grid.pilot_symbols), 1)
        t_sym = (m + cp) / (m * channel.subcarrier_spacing)
        symbols = grid.num_frames * (grid.data_symbols + grid.pilot_symbols)
        slots = math.ceil(symbols / numerology.symbols_per_slot)
        return slots * numerology.symbols_per_slot * t_sym
    return grid.num_data / numerology.symbol_rate_hz


def simulate(
    messages: Sequence[Message],
    serve: Callable[[list[Message]], tuple[list[Any], float]],
    batch_all: bool = True,
    max_batch: int = 1,
    service_time: Callable[[list[Message]], float] | None = None,
    coherence_time_s: float | None = None,
) -> list[Message]:
    """Run the source -> transmitter -> receiver event simulation; fills the messages' timestamps.

    :param messages: with ``t_arrival`` and ``airtime_s`` set
    :param serve: ``serve(batch) -> (results, seconds)``: does the real work for a batch of messages
        (in the order given), returns one result per message and the measured decode time [s]
    :param batch_all: the receiver waits for all messages and serves them as one batch
        (Monte-Carlo); otherwise it serves up to ``max_batch`` waiting messages at a time
    :param service_time: a model of the service time [s] of a batch (default: the measured seconds)
    :param coherence_time_s: channel block length; ``None`` gives every message its own block
    :output: the same messages, with ``t_tx_start, t_tx_end, t_rx_start, t_done, channel_block,
        result`` set
    """
    env = simpy.Environment()
    air = simpy.Resource(env, capacity=1)
    queue = simpy.Store(env)
    msgs = sorted(messages, key=lambda m: (m.t_arrival, m.id))
    total = len(msgs)

    def transmit(m: Message):
        with air.request() as req:
            yield req
            m.t_tx_start = env.now
            m.channel_block = int(env.now // coherence_time_s) if coherence_time_s else m.id
            yield env.timeout(m.airtime_s)
            m.t_tx_end = env.now
        yield queue.put(m)

    def source():
        for m in msgs:
            if m.t_arrival > env.now:
                yield env.timeout(m.t_arrival - env.now)
            env.process(transmit(m))

    def receiver():
        served = 0
        while served < total:
            batch = [(yield queue.get())]
            limit = total - served if batch_all else max_batch
            while len(batch) < limit and (batch_all or queue.items):
                batch.append((yield queue.get()))
            for m in batch:
                m.t_rx_start = env.now
            results, seconds = serve(batch)
            yield env.timeout(service_time(batch) if service_time is not None else seconds)
            for m, r in zip(batch, results, strict=True):
                m.t_done, m.result = env.now, r
            served += len(batch)

    env.process(source())
    env.process(receiver())
    env.run()
    return list(messages)


@dataclass
class JobResult:
    """What one job returns to the store.

    :param rows: results rows (one per image, or one for a phy study)
    :param point_metrics: set metrics of the job (FID, KID), ``{name: value}``
    :param seconds: wall-clock time of the job [s]
    :param unavailable: metrics that could not be computed, ``{name: reason}``
    :param metrics: the metrics that were computed, ``{name: Metric.describe()}``
    """

    rows: list[dict]
    point_metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    unavailable: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def metric_names(scenario) -> list[str]:
    """The metrics a run computes: the scenario's ``metrics:`` or :data:`DEFAULT_METRICS`."""
    return list(dict.fromkeys(scenario.metrics)) or list(DEFAULT_METRICS)


def _is_study(cls) -> bool:
    from linksim.studies import Study

    return isinstance(cls, type) and issubclass(cls, Study)


def method_run_info(scenario) -> dict[str, dict]:
    """``{method name: what the method's class says about it}`` for ``run.json``: only the methods
    with something to state (e.g. DiffJSCC's prompt), from :meth:`ImageMethod.run_info`."""
    from linksim.registry import METHODS

    out = {}
    for m in scenario.methods:
        info = getattr(METHODS.get(m.kind), "run_info", None)
        if info is not None and (d := info(m)):
            out[m.name] = d
    return out


def has_image_methods(scenario) -> bool:
    """True when at least one method of ``scenario`` transmits images (not a phy study)."""
    from linksim.registry import METHODS

    return any(not _is_study(METHODS.get(m.kind)) for m in scenario.methods)


class RunResources:
    """What the jobs of one run share inside one process: the test images and the metric objects.

    Both are built on first use, once: a phy-only run never loads a metric, and a run of many
    (method, point) jobs loads the backbones (LPIPS, DISTS, Inception) once instead of per job. The
    process and Ray executors give each worker its own (:func:`worker_resources`).

    :param scenario: the validated scenario
    :param device: resolved device (``cpu`` / ``cuda``)
    :param out_dir: the run's output folder (saved images go to ``out_dir/recon``)
    :param strict: absent metric weights raise :class:`linksim.errors.WeightsUnavailable`
        (CLI ``--strict-metrics``) instead of leaving the metric's cells empty
    :param allow_download: passed to :func:`linksim.weights.resolve`
    """

    def __init__(self, scenario, device: str = "cpu", out_dir=None, strict: bool = False,
                 allow_download: bool | None = None):

        self.scenario = scenario
        self.device = device
        self.out_dir = Path(out_dir) if out_dir is not None else scenario.output_dir
        self.strict = strict
        self.allow_download = allow_download
        self.metric_names = metric_names(scenario)
        self._metrics: list | None = None
        self._unavailable: dict[str, str] = {}
        self._images = None
        self._side: dict = {}

    def metrics(self) -> tuple[list, dict[str, str]]:
        """``(metric objects, {name: reason} of the unavailable ones)``, built on the first call.

        Warnings are not issued here: :func:`run_scenario` issues one per unavailable metric per
        run, whichever process built it.
        """
        if self._metrics is None:
            from linksim.metrics import MetricUnavailableWarning, build_metrics
            from linksim.registry import METRICS

            factories = {n: METRICS.get(n) for n in self.metric_names}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MetricUnavailableWarning)
                self._metrics, self._unavailable = build_metrics(
                    self.metric_names, self.device, strict=self.strict,
                    allow_download=self.allow_download, factories=factories,
                )
        return self._metrics, dict(self._unavailable)

    def images(self):
        """``(images [B, 3, H, W] float in [0, 1] on the device, names)``, loaded on the first call."""
        if self._images is None:
            images, names, side = _load_images(self.scenario)
            self._images = (images.to(self.device), names)
            self._side = {k: v.to(self.device) for k, v in side.items() if v is not None}
        return self._images

    def side(self) -> dict:
        """Per-image side data of labelled sources (``labels``, ``instances`` ``[B, H, W]``), else ``{}``."""
        self.images()
        return self._side

    def save_originals(self) -> None:
        """``recon/original/<image>.png`` (the references of the report's reconstruction grids)."""
        images, names = self.images()
        _write_pngs(self.out_dir / "recon" / "original", names, images)


_WORKER: dict = {}


def worker_resources(scenario, device: str, out_dir, strict: bool = False) -> RunResources:
    """The :class:`RunResources` of this worker process for this run (built once, then reused).

    A worker of the process pool lives for one run; a Ray worker may serve several runs, so the cache
    is keyed by the scenario and keeps only the latest.
    """
    key = json.dumps(scenario.dump(), sort_keys=True, default=str) + f"|{device}|{out_dir}|{strict}"
    if key not in _WORKER:
        _WORKER.clear()
        _WORKER[key] = RunResources(scenario, device, out_dir, strict)
    return _WORKER[key]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a user error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LinksimError("device: cuda was requested but no CUDA device is available; use device: auto or cpu")
    return device


def operating_point(scenario, point, device: str = "cpu"):
    """The :class:`linksim.codecs.base.OperatingPoint` of ``point`` (what a method sees)."""
    from linksim.codecs.base import OperatingPoint

    return OperatingPoint(
        csnr_db=point.csnr_db,
        cbr=point.cbr,
        link=point.channel.link_config(),
        image_shape=scenario.data.shape if scenario.data is not None else None,
        device=device,
        seed=point.seed,
        ebno_db=point.ebno_db,
    )


def _base_row(scenario, job, config) -> dict:
    p = job.point
    row = {
        "method": config.name,
        "kind": config.kind,
        "channel": p.channel.label(),
        "point": p.key,
        "seed": p.seed,
    }
    for axis, value in p.values:
        row[axis] = str(value) if axis == "cbr" else value
    return row


def run_job(scenario, job, device: str = "cpu", progress: Callable | None = None,
            resources: RunResources | None = None) -> JobResult:
    """Run one method at one sweep point; returns its rows (not yet stored).

    :param job: :class:`linksim.sweep.Job`
    :param progress: ``progress(job, info: dict)`` called with per-batch counters
    :param resources: images and metrics shared by the run's jobs (default: a fresh
        :class:`RunResources` for this job alone)
    """
    from linksim.registry import METHODS

    config = scenario.methods[job.method_index]
    cls = METHODS.get(config.kind)
    op = operating_point(scenario, job.point, device)
    t0 = time.perf_counter()
    if _is_study(cls):
        result = _run_study(scenario, job, cls, config, op, progress)
    else:
        if resources is None:
            resources = RunResources(scenario, device)
        result = _run_images(scenario, job, cls, config, op, progress, resources)
    result.seconds = time.perf_counter() - t0
    return result


def _run_study(scenario, job, cls, config, op, progress) -> JobResult:
    """A phy study at one point: the degenerate event simulation of one message at t = 0."""
    import torch

    study = cls(config, op)

    def serve(batch):
        gen = torch.Generator(device=op.device).manual_seed(sub_seed(op.seed, "study"))
        t = time.perf_counter()
        fields = study.run(gen, (lambda info: progress(job, info)) if progress else None)
        return [fields], time.perf_counter() - t

    (msg,) = simulate([Message(0, None, 0.0)], serve, batch_all=True)
    row = _base_row(scenario, job, config)
    row.update(msg.result)
    row["seconds"] = msg.t_done - msg.t_arrival
    return JobResult([row])


def _load_images(scenario):
    try:
        from linksim.data import load_images
    except ImportError as err:
        raise LinksimError(f"image methods need linksim.data.load_images, which is not available ({err})") from None
    loaded = load_images(scenario.data)
    side = loaded.side() if hasattr(loaded, "side") else {}
    return loaded.images, list(loaded.names), side


def _run_images(scenario, job, cls, config, op, progress, resources: RunResources) -> JobResult:
    """An image method at one point: every (image, draw) is a message through the event simulation.

    With ``channel.draws: K`` each image is sent ``K`` times over independent channel realisations
    and noise; message ``k·B + i`` is image ``i`` in draw ``k`` (rows carry ``draw = k``). Draws of a
    batch come from the point's seed alone (:func:`linksim.sweep.draw_seed`), so every method and
    every estimator/equaliser sees the same realisation and unit noise for the same (image, draw).

    Images added to a finished run form a chunk of their own (``job.chunks``): chunk ``c`` is
    simulated on its own, with the seed ``sub_seed(point seed, "images", c)`` (chunk 0: the point
    seed itself), so the rows of the images that were already there never change and every method
    sees the same draws for the same (chunk, image, draw).
    """
    import torch

    all_images, all_names = resources.images()
    all_side = resources.side()
    index = {n: i for i, n in enumerate(all_names)}
    chunks = job.chunks or ((0, tuple(all_names)),)
    draws = int(getattr(job.point.channel, "draws", 1))
    method = cls(config, op)
    if getattr(method, "uses_side", False) and not all_side:
        raise LinksimError(f"method {config.name!r} ({config.kind}) needs labelled data "
                           "(data.source: scenes | cityscapes | coco_stuff)")
    grid = method.grid()
    air = airtime_s(grid, job.point.channel, scenario.numerology)
    # channel_uses = data symbols (the CBR numerator, DESIGN.md §3); pilots and CP go to `overhead`
    channel_uses, overhead = grid.num_data, grid.overhead
    rows, x_hats, refs, side_refs = [], [], [], []
    for chunk, chunk_names in chunks:
        sel = [index[n] for n in chunk_names]
        images, names = all_images[sel], list(chunk_names)
        side = {k: v[sel] for k, v in all_side.items()}
        seed = op.seed if chunk == 0 else sub_seed(op.seed, "images", chunk)
        x_hat, chunk_rows = _run_chunk(scenario, job, method, config, op, progress, images, names, side, seed,
                                       draws, air)
        for row in chunk_rows:
            # a variable-length method (lrisc) reports its per-image total itself (Decoded.extras,
            # declared in extra_columns); every other method occupies the grid's data symbols
            row.setdefault("channel_uses", channel_uses)
            row["overhead"] = overhead
        rows += chunk_rows
        x_hats.append(x_hat)
        refs.append(images.repeat(draws, 1, 1, 1) if draws > 1 else images)
        side_refs.append({k: v.repeat(draws, *([1] * (v.dim() - 1))) for k, v in side.items()} if draws > 1 else side)
        if scenario.save_images:  # the first draw of each image (the grids show one realisation)
            _save_images(resources.out_dir, job, names, x_hat[:len(names)])
    side_all = {k: torch.cat([s[k] for s in side_refs]) for k in side_refs[0]} if side_refs and side_refs[0] else {}
    per_image, point_metrics, described, unavailable = _evaluate(resources, torch.cat(refs), torch.cat(x_hats),
                                                                 side_all)
    for i, row in enumerate(rows):
        for name, vals in per_image.items():
            row[name] = vals[i]
    return JobResult(rows, point_metrics, unavailable=unavailable, metrics=described)


def _run_chunk(scenario, job, method, config, op, progress, images, names, side, seed, draws, air):
    """One chunk of images through the event simulation: ``(x_hat [B·draws, 3, H, W], rows)`` (the
    rows without metric values)."""
    import torch

    count = len(names)
    traffic = scenario.traffic
    arrivals = arrival_times(traffic, count * draws, sub_seed(seed, "arrivals"))
    msgs = [Message(i, i % count, t, air, traffic.deadline_s) for i, t in enumerate(arrivals)]

    def gen(*parts):
        return torch.Generator(device=op.device).manual_seed(sub_seed(seed, *parts))

    def serve(batch):
        idx = [m.payload for m in batch]
        first = batch[0]
        x = images[idx]
        # methods that send side data (GESCO's label maps) get theirs with the images
        kw = {"side": {k: v[idx] for k, v in side.items()}} if getattr(method, "uses_side", False) else {}
        tx = method.encode(x, gen("encode", first.id), **kw)
        rx = method.channel(tx, gen("channel", first.channel_block), gen("noise", first.id))
        t = time.perf_counter()
        dec = method.decode(rx, gen("decode", first.id))
        seconds = time.perf_counter() - t
        if progress:
            progress(job, {"images": len(idx)})
        out = []
        for j in range(len(idx)):
            out.append({
                "x_hat": dec.images[j : j + 1].detach(),
                "outage": _pick(dec.outage if dec.outage is not None else tx.outage, j),
                "payload_bits": _pick(dec.payload_bits if dec.payload_bits is not None else tx.payload_bits, j),
                "nfe": dec.nfe,
                "seconds": seconds / len(idx),
                "extras": {k: _pick_extra(v, j) for k, v in dec.extras.items() if k in method.extra_columns},
            })
        return out, seconds

    simulate(msgs, serve, batch_all=traffic.kind == "batch", max_batch=traffic.max_batch,
             coherence_time_s=scenario.numerology.coherence_time_s)

    x_hat = torch.cat([m.result["x_hat"] for m in msgs]).clamp(0, 1)
    rows = []
    for i, m in enumerate(msgs):
        row = _base_row(scenario, job, config)
        row.update({
            "cbr": str(op.cbr) if op.cbr is not None else "",
            "csnr_db": op.csnr_db,
            "image": names[m.payload],
            "draw": i // count,
            "outage": m.result["outage"],
            "payload_bits": m.result["payload_bits"],
            "seconds": m.result["seconds"],
            "nfe": m.result["nfe"],
            "t_arrival": m.t_arrival,
            "t_done": m.t_done,
            "latency_s": m.latency_s,
            "queue_s": m.queue_s,
            "airtime_s": m.airtime_s,
            "deadline_missed": m.deadline_missed,
            **m.result["extras"],
        })
        rows.append(row)
    return x_hat, rows


def _evaluate(resources: RunResources, images, x_hat, side: dict | None = None):
    """All metrics of one (method, point): per-image values and the set metrics of the point.

    The metric objects are the run's (built once); set metrics are reset first, so FID/KID describe
    this (method, point) alone. Per-image metrics take the reference first: ``metric(x, x_hat)``.

    Metrics with ``uses_side`` (``miou``) also get ``side=`` (the labels of labelled sources);
    ``metric.columns(...)`` adds their per-image extra columns (per-class IoU).

    :input images: [B, 3, H, W] references; ``x_hat``: [B, 3, H, W] reconstructions in [0, 1]
    :output: ``({name: [B] list}, {set metric columns: value}, {name: describe()}, {name: reason})``
    """
    from linksim.metrics import PerImageMetric, SetMetric

    metrics, unavailable = resources.metrics()
    per_image: dict[str, list[float]] = {}
    point_metrics: dict[str, float] = {}
    described = {m.name: m.describe() for m in metrics}
    chunks = [slice(i, i + METRIC_CHUNK) for i in range(0, images.shape[0], METRIC_CHUNK)]
    for metric in metrics:
        if isinstance(metric, PerImageMetric) and getattr(metric, "uses_side", False):
            sub = [metric(images[c], x_hat[c], side={k: v[c] for k, v in (side or {}).items()}) for c in chunks]
            per_image[metric.name] = [v for vals, _ in sub for v in vals.cpu().tolist()]
            for col in metric.extra_columns:
                per_image[col] = [v for _, cols in sub for v in cols[col]]
        elif isinstance(metric, PerImageMetric):
            per_image[metric.name] = [v for c in chunks for v in metric(images[c], x_hat[c]).cpu().tolist()]
        elif isinstance(metric, SetMetric):
            need = getattr(metric, "min_samples", 2)
            if images.shape[0] < need:  # a NaN crash (1 image) or a meaningless number (FID 518 from 3)
                unavailable[metric.name] = (f"needs at least {need} images x draws per point, got "
                                            f"{images.shape[0]} (raise data.limit or channel.draws)")
                continue
            metric.reset()
            for c in chunks:
                metric.update(images[c], x_hat[c])
            point_metrics[metric.name] = float(metric.compute())
            point_metrics.update({k: float(v) for k, v in metric.extra().items()})
            metric.reset()  # frees the accumulated features until the next point
    return per_image, point_metrics, described, unavailable


def _pick_extra(v, j):
    """Image ``j``'s value of a :attr:`Decoded.extras` entry: per-image sequence or a scalar."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if hasattr(v, "dim") and v.dim() == 0:
        return v.item()
    return _pick(v, j)


def _pick(t, j):
    if t is None:
        return None
    v = t[j]
    return v.item() if hasattr(v, "item") else v


def recon_folder(out_dir, job) -> Path:
    """``recon/<method>/<point folder>`` of a job (DESIGN.md §5), named by
    :func:`linksim.sweep.point_dirname` (``10_1-24``, ``0_1-48,channel.estimator=ls``) and read back
    by the reports with :func:`linksim.sweep.parse_point_dirname`."""
    from linksim.sweep import point_dirname, safe_name

    values = dict(job.point.values)
    # csnr/cbr also when a method fixes them itself (not swept): the folder always has the DESIGN.md head
    return Path(out_dir) / "recon" / safe_name(job.method) / point_dirname(values)


def _write_pngs(folder, names, images) -> None:
    """Lossless 8-bit PNGs ``folder/<name>.png``; each written to a temporary name and renamed, so a
    reader (or a concurrent worker writing the same file) never sees half a file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    from linksim.store import atomic_path

    for name, a in zip(names, arr):
        with atomic_path(folder / f"{name}.png") as tmp:
            Image.fromarray(a).save(tmp)


def _save_images(out_dir, job, names, x_hat) -> None:
    """``recon/<method>/<csnr_db>_<cbr>/<image>.png``, lossless (DESIGN.md §5)."""
    _write_pngs(recon_folder(out_dir, job), names, x_hat)


def _todo(scenario, store, all_jobs, names: list[str] | None) -> list:
    """The jobs still to run: phy studies without a record; image jobs with the image chunks they
    lack (:meth:`linksim.store.ResultsStore.image_chunks`).

    :raises LinksimError: images were added to finished points while set metrics (FID, KID), which
        describe all images of a point at once, are requested
    """
    import dataclasses

    from linksim.metrics import SET_METRICS
    from linksim.registry import METHODS

    done = store.done_chunks()
    if names is None:
        return [j for j in all_jobs if j.key not in done]
    chunks = [(c, tuple(n)) for c, n in enumerate(store.image_chunks(names))]
    todo, grown = [], []
    for j in all_jobs:
        if _is_study(METHODS.get(scenario.methods[j.method_index].kind)):
            if j.key not in done:
                todo.append(j)
            continue
        have = done.get(j.key, set())
        missing = tuple((c, n) for c, n in chunks if c not in have)
        if missing:
            todo.append(dataclasses.replace(j, chunks=missing))
            if have:
                grown.append(j)
    sets = [m for m in metric_names(scenario) if m in SET_METRICS]
    if grown and sets:
        raise LinksimError(
            f"{store.dir}: images were added to finished points, but set metrics ({', '.join(sets)}) describe all "
            "images of a point at once; rerun with --fresh (or choose another --output)")
    return todo


def run_scenario(scenario, output=None, fresh: bool = False, progress=None, on_job=None,
                 strict_metrics: bool = False):
    """Run every (method, point) job of ``scenario`` that is not finished yet; store as it goes.

    Image runs build their metrics once (lazily, only those of ``metrics:``, default
    :data:`DEFAULT_METRICS`), write ``recon/original/<image>.png`` once when ``save_images`` is set,
    and issue one :class:`linksim.metrics.MetricUnavailableWarning` per unavailable metric.

    :param output: output folder (default: ``scenario.output_dir``)
    :param fresh: start over instead of resuming
    :param progress: ``progress(job, info)`` per batch (in-process executor)
    :param on_job: ``on_job(job, result, skipped: bool)`` after each job is stored (or skipped)
    :param strict_metrics: a metric whose weights are absent is an error, raised before any work
    :output: the output folder
    :raises linksim.errors.WeightsUnavailable: ``strict_metrics`` and a metric's weight file is absent
    """
    from linksim.metrics import MetricUnavailableWarning
    from linksim.store import ResultsStore
    from linksim.sweep import jobs, run_jobs

    out = Path(output) if output is not None else scenario.output_dir
    device = resolve_device(scenario.device)
    resources = RunResources(scenario, device, out, strict=strict_metrics)
    images = has_image_methods(scenario)
    if strict_metrics and images:
        resources.metrics()  # raises WeightsUnavailable before any output is written
    store = ResultsStore(out, scenario, fresh=fresh)
    all_jobs = jobs(scenario)
    todo = _todo(scenario, store, all_jobs, resources.images()[1] if images else None)
    if on_job:
        pending = {j.key for j in todo}
        for j in all_jobs:
            if j.key not in pending:
                on_job(j, None, True)
    t0 = time.perf_counter()
    if images and scenario.save_images and (todo or not (out / "recon" / "original").is_dir()):
        resources.save_originals()
    warned: set[str] = set()

    def stored(job, result):
        store.append(job.method, job.point.key, result, [c for c, _ in job.chunks] or None)
        for name, reason in result.unavailable.items():
            if name not in warned:  # one warning per metric per run, whichever worker saw it
                warned.add(name)
                warnings.warn(f"metric '{name}' unavailable, its cells stay empty: {reason}",
                              MetricUnavailableWarning, stacklevel=2)
        if on_job:
            on_job(job, result, False)

    run_jobs(scenario, todo, device, stored, progress, resources=resources)
    store.write_summary()
    store.write_run_json({
        "name": scenario.name, "device": device, "executor": scenario.executor, "jobs": len(all_jobs),
        "jobs_run": len(todo), "jobs_resumed": len(all_jobs) - len(todo),
        "seconds": time.perf_counter() - t0, "methods": method_run_info(scenario),
    })
    return out
