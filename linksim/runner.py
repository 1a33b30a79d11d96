"""Running a scenario (layer L5, docs/INTERNALS.md): :func:`run_scenario` resumes the results folder,
runs the unfinished jobs on the scenario's executor (:func:`linksim.executors.run_jobs`, each job
through :func:`linksim.engine.run_job`), stores each one as it finishes and writes the summary and
the run record. The CLI (``linksim run``) and the Python API (:func:`linksim.run`) call it.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from linksim.configs import has_image_methods, metric_names, sends_images
from linksim.engine import RunResources, resolve_device
from linksim.errors import LinksimError
from linksim.executors import run_jobs
from linksim.registry import METHODS
from linksim.store import ResultsStore
from linksim.sweep import jobs

__all__ = ["run_scenario", "method_run_info"]


def method_run_info(scenario) -> dict[str, dict]:
    """``{method name: what the method's class says about it}`` for ``run.json``: only the methods
    with something to state (e.g. DiffJSCC's prompt), from :meth:`ImageMethod.run_info`."""
    out = {}
    for m in scenario.methods:
        info = getattr(METHODS.get(m.kind), "run_info", None)
        if info is not None and (d := info(m)):
            out[m.name] = d
    return out


def _todo(scenario, store, all_jobs, names: list[str] | None) -> list:
    """The jobs still to run: phy studies without a record; image jobs with the image chunks they
    lack (:meth:`linksim.store.ResultsStore.image_chunks`).

    :raises LinksimError: images were added to finished points while set metrics (FID, KID), which
        describe all images of a point at once, are requested
    """
    import dataclasses

    from linksim.metrics import SET_METRICS

    done = store.done_chunks()
    if names is None:
        return [j for j in all_jobs if j.key not in done]
    chunks = [(c, tuple(n)) for c, n in enumerate(store.image_chunks(names))]
    todo, grown = [], []
    for j in all_jobs:
        if not sends_images(scenario.methods[j.method_index].kind):
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
    :data:`linksim.configs.DEFAULT_METRICS`), write ``recon/original/<image>.png`` once when ``save_images`` is set,
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
    store.sort_rows([(j.method, j.point.key) for j in all_jobs])
    store.write_summary()
    store.write_run_json({
        "name": scenario.name, "device": device, "executor": scenario.executor, "jobs": len(all_jobs),
        "jobs_run": len(todo), "jobs_resumed": len(all_jobs) - len(todo),
        "seconds": time.perf_counter() - t0, "methods": method_run_info(scenario),
    })
    return out
