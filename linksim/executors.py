"""Executors: where the jobs of a run execute (layer L4, docs/INTERNALS.md).

Executors run independent (method, point) jobs (:func:`linksim.engine.run_job`) and hand each
finished job's rows back to the caller, which stores them durably before anything else is recorded:

* ``inprocess`` (default): one after the other, in this process;
* ``process``: a :class:`concurrent.futures.ProcessPoolExecutor` with ``workers`` processes;
* ``ray``: Ray tasks on a local Ray instance bound to 127.0.0.1 (:func:`ray_init`;
  ``pip install 'linksim[ray]'``), or on the cluster named by the scenario's ``address``
  (``auto``: the one ``ray start --head`` runs on this machine). Each job requests
  ``threads`` CPUs (default 1) and ``num_gpus`` GPUs from Ray (:func:`ray_options`) and runs with
  that many torch threads (on ``cuda`` when it holds GPUs); a request the cluster cannot meet is
  an error before anything is submitted, not a task that waits forever.

Both pools keep at most ``workers`` jobs submitted (:func:`_run_bounded`): when a job fails, no
further job starts, the running ones finish and are stored, and the error is re-raised.

A worker gets the scenario as :meth:`linksim.scenario.Scenario.dump` (the one serialisation of a
scenario, also what ``scenario.yaml`` holds) and re-validates it without the point checks.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any, Callable, Iterable

from linksim.engine import RunResources, run_job, worker_resources
from linksim.errors import LinksimError
from linksim.scenario import scenario_from_dict
from linksim.sweep import Job

__all__ = ["run_jobs", "torch_threads", "ray_init", "ray_options"]


def _run_job_remote(scenario_data: dict, job: Job, device: str, out_dir: str, strict: bool = False) -> Any:
    """Worker entry point (process pool / Ray): rebuild the scenario and run one job.

    The worker's images and metric objects are built on its first job and reused for the next ones
    (:func:`linksim.engine.worker_resources`).
    """
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
    if resources is None:
        resources = RunResources(scenario, device)
    if scenario.executor == "inprocess" or len(todo) <= 1:
        with torch_threads(scenario.threads):
            for job in todo:
                on_done(job, run_job(scenario, job, device=device, progress=progress, resources=resources))
        return
    data = scenario.dump()
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
    options = ray_options(scenario)
    ray = ray_init(scenario.workers * options["num_cpus"], scenario.address)
    _check_resources(ray, options)
    if options["num_gpus"] > 0:
        args = ("cuda", *args[1:])  # Ray hands the job its GPUs (CUDA_VISIBLE_DEVICES)
    data = dict(data, threads=options["num_cpus"])  # torch threads = the CPUs Ray reserved for the job
    remote = ray.remote(**options)(_run_job_remote)
    _run_bounded(todo, scenario.workers, lambda job: remote.remote(data, job, *args),
                 lambda running: ray.wait(running, num_returns=1)[0], _ray_result, on_done)


def ray_options(scenario) -> dict:
    """The ``ray.remote`` options of one job: ``num_cpus`` = the scenario's ``threads`` (default 1;
    the job runs with that many torch threads), ``num_gpus`` = its ``num_gpus``, no retries (a
    failed job is reported, the store keeps the others; a rerun computes it)."""
    return {"num_cpus": int(scenario.threads or 1), "num_gpus": float(scenario.num_gpus), "max_retries": 0}


def _check_resources(ray, options: dict) -> None:
    """Refuse a per-job request that no node of the cluster can hold: Ray would queue it forever
    (a task runs on one node)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        largest = max((r.get(name, 0.0) for r in nodes), default=0.0)
        if options[key] > largest:
            raise LinksimError(f"executor: ray: each job requests {key} {options[key]:g}, but the largest node of "
                               f"the Ray cluster has {largest:g} {name}s; lower it"
                               + (" or run on a cluster with GPUs (address:)" if name == "GPU" else ""))


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


def ray_init(workers: int, address: str | None = None):
    """The Ray instance of ``executor: ray``, reused by later runs in this process.

    ``address`` ``None`` (default): a local instance, started on first use with
    ``num_cpus=workers``, bound to loopback only (127.0.0.1, no dashboard). Ray replaces a requested
    127.0.0.1 by the machine's outward address on Linux (its ``ray_constants.ENABLE_RAY_CLUSTER``,
    read when the node address is resolved); that switch is turned off while Ray starts, and the
    address Ray ends up on is checked. ``RAY_ADDRESS`` is ignored: linksim joins a cluster only
    when the scenario names one.

    ``address`` ``"auto"`` or ``"host:port"``: join that running cluster (``ray start --head``);
    this process joins as a driver on 127.0.0.1 when the address is a loopback one.

    :output: the ``ray`` module
    :raises LinksimError: ``ray`` is not installed, the cluster cannot be reached, or (local) a Ray
        instance that is not on loopback is already initialised in this process
    """
    import logging

    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise LinksimError("executor: ray needs the 'ray' package: pip install 'linksim[ray]'") from None
    if address is not None:
        if not ray.is_initialized():
            loopback = _is_loopback(address.rsplit(":", 1)[0])
            local = {"_node_ip_address": "127.0.0.1"} if loopback else {}
            cluster = ray_constants.ENABLE_RAY_CLUSTER
            if loopback:  # else Ray rewrites 127.0.0.1 to the outward address (see above)
                ray_constants.ENABLE_RAY_CLUSTER = False
            try:
                ray.init(address=address, logging_level=logging.WARNING, **local)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise LinksimError(f"executor: ray: cannot join the Ray cluster at address {address!r}: "
                                   f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
            finally:
                ray_constants.ENABLE_RAY_CLUSTER = cluster
        return ray
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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
