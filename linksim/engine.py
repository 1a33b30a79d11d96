"""Running one job (layer L3, docs/INTERNALS.md): one method at one sweep point.

:func:`run_job` is the one place a job runs, whatever the executor (:mod:`linksim.executors`):
it builds the method from the registry, sends its messages (images, or for phy studies one block of
Monte-Carlo work) through the discrete-event simulation of :mod:`linksim.des` (DESIGN.md §6),
evaluates the reconstructions (:class:`RunResources` holds the run's images and metric objects) and
writes the saved images. What a method is, is declared by its config model (``sends_images``) and
its class (``result_columns``, ``extra_columns``, ``uses_side``), read here and nowhere else by class checks.
The messages' timestamps become results columns (latency, queueing delay, deadline misses).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from linksim.configs import metric_names
from linksim.des import Message, airtime_s, arrival_times, simulate
from linksim.errors import LinksimError
from linksim.files import atomic_path
from linksim.frames import (AOI_COLUMN, GREY, IN_TIME_SUFFIX, FrameTimes, age_of_information, frame_columns,
                            in_time_metrics, shown_in_time)
from linksim.registry import METHODS, METRICS
from linksim.sweep import operating_point, point_dirname, safe_name, sub_seed
from linksim.timing import service_time

__all__ = [
    "JobResult",
    "resolve_device",
    "run_job",
    "RunResources",
    "recon_folder",
    "worker_resources",
]

#: Images per metric call: bounds the memory of the backbone metrics (LPIPS, DISTS, Inception).
METRIC_CHUNK = 16


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
    config = scenario.methods[job.method_index]
    cls = METHODS.get(config.kind)
    op = operating_point(scenario, job.point, device)
    t0 = time.perf_counter()
    if not config.sends_images:
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
    channel_uses, overhead = grid.channel_uses, grid.overhead
    rows, x_hats, refs, side_refs = [], [], [], []
    traffic = scenario.traffic
    streams = bool(frame_columns(traffic, []))  # per-frame columns (linksim/frames.py)
    shown: list[int | None] = []  # per row: the row whose image is shown in its display slot
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
        if streams:  # the chunk's messages are one stream of frames
            times = FrameTimes([r["t_arrival"] for r in chunk_rows], [r["t_done"] for r in chunk_rows],
                               [r["outage"] for r in chunk_rows])
            for row, age in zip(chunk_rows, age_of_information(times)):
                row[AOI_COLUMN] = age
            if traffic.deadline_s is not None:
                shown += [None if j is None else len(rows) + j for j in shown_in_time(times, traffic.deadline_s)]
        rows += chunk_rows
        x_hats.append(x_hat)
        refs.append(images.repeat(draws, 1, 1, 1) if draws > 1 else images)
        side_refs.append({k: v.repeat(draws, *([1] * (v.dim() - 1))) for k, v in side.items()} if draws > 1 else side)
        if scenario.save_images:  # the first draw of each image (the grids show one realisation)
            _save_images(resources.out_dir, job, names, x_hat[:len(names)])
    side_all = {k: torch.cat([s[k] for s in side_refs]) for k in side_refs[0]} if side_refs and side_refs[0] else {}
    ref_all, x_all = torch.cat(refs), torch.cat(x_hats)
    per_image, point_metrics, described, unavailable = _evaluate(resources, ref_all, x_all, side_all)
    for i, row in enumerate(rows):
        for name, vals in per_image.items():
            row[name] = vals[i]
    if shown:
        _quality_in_time(resources, ref_all, x_all, shown, rows, per_image)
    return JobResult(rows, point_metrics, unavailable=unavailable, metrics=described)


def _quality_in_time(resources: RunResources, refs, x_hat, shown: list[int | None], rows: list[dict],
                     per_image: dict) -> None:
    """``<metric>_in_time`` of every row (:mod:`linksim.frames`): the metric of what the display shows in
    the frame's slot — its own reconstruction when delivered in time (the value is copied), else the
    last frame delivered in time, or mid-grey before any — against the frame's original.

    :input refs, x_hat: ``[R, 3, H, W]`` originals and reconstructions of the rows, in row order
    :param shown: per row, the row shown (``None``: the grey frame)
    """
    import torch

    from linksim.metrics import PerImageMetric

    metrics, _ = resources.metrics()
    wanted = set(in_time_metrics([m.name for m in metrics]))
    other = [i for i, j in enumerate(shown) if j != i]
    if other:
        grey = torch.full_like(x_hat[:1], GREY)
        stale = torch.cat([x_hat[j:j + 1] if j is not None else grey for j in (shown[i] for i in other)])
        stale_refs = refs[other]
    for metric in metrics:
        if metric.name not in wanted or not isinstance(metric, PerImageMetric) or metric.name not in per_image:
            continue
        col = f"{metric.name}{IN_TIME_SUFFIX}"
        values = list(per_image[metric.name])
        if other:
            chunks = [slice(k, k + METRIC_CHUNK) for k in range(0, len(other), METRIC_CHUNK)]
            got = [v for c in chunks for v in metric(stale_refs[c], stale[c]).cpu().tolist()]
            for i, v in zip(other, got):
                values[i] = v
        for row, v in zip(rows, values):
            row[col] = v


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

    from linksim.phy.links import TransmitTimes, transmit_times

    # A time-varying channel (a moving TDL) is one continuous process per channel draw, sampled at
    # each message's transmission time (simulated); static channels draw from gen("channel", block).
    processes = [sub_seed(seed, "channel-process", k) for k in range(draws)]
    per_message = getattr(method, "per_message_channel", False)
    sent: dict = {}  # message id -> (TxSignal, RxSignal) of a channel that ran at transmit time

    def send(batch):
        idx = [m.payload for m in batch]
        first = batch[0]
        # methods that send side data (GESCO's label maps) get theirs with the images
        kw = {"side": {k: v[idx] for k, v in side.items()}} if getattr(method, "uses_side", False) else {}
        tx = method.encode(images[idx], gen("encode", first.id), **kw)
        times = TransmitTimes(tuple(m.t_tx_start for m in batch), tuple(processes[m.id // count] for m in batch),
                              air)
        with transmit_times(times):
            rx = method.channel(tx, gen("channel", first.channel_block), gen("noise", first.id))
        return tx, rx

    def transmit(m):
        # HARQ / link adaptation: the physical layer runs when the message takes the channel, in
        # simulated-time order, and its transmissions set how long it holds the channel
        tx, rx = sent[m.id] = send([m])
        if rx.air is None:
            return None
        m.airtime_s = air * float(rx.air.transmissions[0])
        return m.airtime_s + float(rx.air.waits_s[0])

    def receive(batch, tx, rx):
        t = time.perf_counter()
        dec = method.decode(rx, gen("decode", batch[0].id))
        seconds = time.perf_counter() - t
        out = []
        for j in range(len(batch)):
            out.append({
                "x_hat": dec.images[j : j + 1].detach(),
                "outage": _pick(dec.outage if dec.outage is not None else tx.outage, j),
                "payload_bits": _pick(dec.payload_bits if dec.payload_bits is not None else tx.payload_bits, j),
                "nfe": dec.nfe,
                "seconds": seconds / len(batch),
                "extras": {k: _pick_extra(v, j) for k, v in dec.extras.items() if k in method.extra_columns},
            })
        return out, seconds

    def serve(batch):
        if per_message:
            out, seconds = [], 0.0
            for m in batch:
                o, s = receive([m], *sent.pop(m.id))
                out, seconds = out + o, seconds + s
        else:
            out, seconds = receive(batch, *send(batch))
        if progress:
            progress(job, {"images": len(batch)})
        return out, seconds

    # channel_block = the coherence interval of a message: numerology.coherence_time_s, or for a moving
    # channel the 0.423 / f_D its Doppler implies (the two never come together: validation refuses it)
    coherence = scenario.numerology.coherence_time_s or getattr(job.point.channel, "coherence_time_s", lambda: None)()
    service = None
    if scenario.receiver_time == "model":  # deterministic simulated time (linksim/timing.py)
        entry, profile = scenario.cost_model(config, job.point.channel.kind)

        def service(batch):
            return service_time(entry, profile, batch[0].result["nfe"], op.image_shape, len(batch))

    simulate(msgs, serve, batch_all=traffic.kind == "batch", max_batch=traffic.max_batch,
             service_time=service, coherence_time_s=coherence, transmit=transmit if per_message else None)

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
    values = dict(job.point.values)
    # csnr/cbr also when a method fixes them itself (not swept): the folder always has the DESIGN.md head
    return Path(out_dir) / "recon" / safe_name(job.method) / point_dirname(values)


def _write_pngs(folder, names, images) -> None:
    """Lossless 8-bit PNGs ``folder/<name>.png``; each written to a temporary name and renamed, so a
    reader (or a concurrent worker writing the same file) never sees half a file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    for name, a in zip(names, arr):
        with atomic_path(folder / f"{name}.png") as tmp:
            Image.fromarray(a).save(tmp)


def _save_images(out_dir, job, names, x_hat) -> None:
    """``recon/<method>/<csnr_db>_<cbr>/<image>.png``, lossless (DESIGN.md §5)."""
    _write_pngs(recon_folder(out_dir, job), names, x_hat)
