"""``executor: ray`` (issue 11 item 4, issue 12 item 5, issue 17 item 6): Ray binds loopback only,
a job's error arrives as the same one-line linksim error as in-process, a failed job leaves the
finished rows stored, the pending jobs cancelled, and a rerun that completes to the uninterrupted
table; in-process and Ray give identical quality columns; a ``linksim run`` on Ray killed with
SIGKILL resumes without recomputing a finished job; each job gets the torch threads and GPUs it
requests from Ray, and a request the cluster cannot meet is an error, not a hang.

One local Ray instance (started by linksim's own :func:`linksim.executors.ray_init`, ~5 s) serves the
whole module; the killed ``linksim run`` subprocess joins it through the scenario's ``address``
(its GCS on 127.0.0.1), so no second instance starts. Ray's workers see the environment of the
moment Ray started, so the plug-in's folder (``PYTHONPATH``) and its control file are set before that.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("ray")

from linksim.errors import LinksimError  # noqa: E402
from linksim.executors import ray_init, ray_options  # noqa: E402
from linksim.runner import run_scenario  # noqa: E402
from linksim.scenario import scenario_from_dict  # noqa: E402
from linksim.store import read_points  # noqa: E402

from .plugin_path import PLUGIN_DIR, install, subprocess_env  # noqa: E402
from .test_executor_failure import check_failed_job, check_one_line_error  # noqa: E402

#: the column that holds measured wall-clock time (differs between any two runs; the simulated
#: timeline -- t_done, latency_s, queue_s -- is modelled and must agree)
TIMES = ["seconds"]
CLI = "import sys; from linksim.cli import main; sys.exit(main(sys.argv[1:]))"
STUDY = {
    "name": "raystudy", "seed": 3, "device": "cpu", "channel": {"kind": "awgn"},
    "sweep": {"ebno_db": [0, 1, 2, 3, 4, 5]},
    "methods": [{"name": "a", "kind": "plugin_study"}],
    "executor": "ray", "workers": 2,
}


def _table(folder):
    df = pd.read_csv(folder / "results.csv")
    keys = ["method", "point"] + (["image", "draw"] if "image" in df else [])
    return df.drop(columns=[c for c in TIMES if c in df]).sort_values(keys).reset_index(drop=True)


@pytest.fixture(scope="module")
def ray_control(tmp_path_factory):
    """``(ray module, control file)`` of the module's Ray instance (shut down afterwards)."""
    control = tmp_path_factory.mktemp("ray") / "control.json"
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]))
    mp.setenv("LINKSIM_TESTPLUGIN_CONTROL", str(control))
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.setenv("OMP_WAIT_POLICY", "PASSIVE")
    ray = ray_init(2)
    ray.get([ray.remote(_warm).remote() for _ in range(2)])  # both workers up, linksim imported
    yield ray, control
    ray.shutdown()
    mp.undo()


def _warm() -> None:
    import time

    import linksim.engine  # noqa: F401 - what every job imports first

    time.sleep(1)  # holds this worker, so the other task goes to the other one


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it (Ray's GCS, raylet, agents and workers are children of
    the driver or of the raylet)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in found]
        found.update(kids)
        frontier.extend(kids)
    return found


def _listening() -> dict[int, str]:
    """``{socket inode: local address}`` of every listening TCP socket (``/proc/net/tcp{,6}``,
    state 0A); addresses decoded by hand (each 32-bit word is little-endian)."""
    out = {}
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A":
                continue
            hexaddr = f[1].split(":")[0]
            raw = b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8))
            out[int(f[9])] = str(ipaddress.ip_address(raw))
    return out


def _is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    ip = ip.ipv4_mapped or ip if ip.version == 6 else ip
    return ip.is_loopback


def test_ray_listens_on_loopback_only(ray_control):
    ray, _ = ray_control
    assert ray.get(ray.remote(lambda: 1).remote()) == 1  # workers up
    listening = _listening()
    sockets = {}
    for pid in _descendants(os.getpid()):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in listening:
                sockets[int(target[8:-1])] = (pid, listening[int(target[8:-1])])
    assert len(sockets) >= 3  # at least the GCS, the raylet and this driver's core worker
    outside = {inode: v for inode, v in sockets.items() if not _is_loopback(v[1])}
    assert not outside, f"Ray listens outside 127.0.0.0/8: {outside}"


def test_failed_job_under_ray_executor(tmp_path, ray_control):
    check_failed_job(tmp_path, ray_control[1], "ray")


def test_ray_executor_shows_the_same_one_line_error(tmp_path, capsys, ray_control):
    check_one_line_error(tmp_path, ray_control[1], "ray", capsys)


def test_inprocess_and_ray_give_identical_quality_columns(tmp_path, ray_control):
    """The embedded DeepJSCC over a moving TDL (the time-varying channel), 2 points x 2 images: the
    same rows, every column but ``seconds`` equal (the simulated timeline included), whichever
    executor ran the jobs. ``threads: 1`` on both: torch's float reductions depend on the number of
    intra-op threads (MS-SSIM differs in the last bit between 1 and 2 threads)."""
    raw = {"threads": 1,
        "name": "same", "seed": 11, "device": "cpu", "data": {"source": "embedded", "size": 32, "limit": 2},
        "channel": {"kind": "tdl", "speed": 30.0, "cp": 4, "data_symbols": 8, "estimator": "ls"},
        "sweep": {"csnr_db": [0, 10], "cbr": ["1/24"]},
        "methods": [{"name": "deepjscc", "kind": "jscc"}], "metrics": ["psnr", "ms_ssim"],
        "traffic": {"kind": "periodic", "interval_s": 0.1},
    }
    run_scenario(scenario_from_dict(raw), output=tmp_path / "inprocess")
    run_scenario(scenario_from_dict(dict(raw, executor="ray", workers=2)), output=tmp_path / "ray")
    a, b = _table(tmp_path / "inprocess"), _table(tmp_path / "ray")
    assert len(a) == 4 and a.psnr.notna().all()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_ray_timeline_is_the_in_process_one_byte_for_byte(tmp_path, ray_control):
    """Simulated time (issue 17 item 1) under Ray: Poisson traffic with a deadline, two methods on
    two workers; results.csv is the in-process one cell for cell (as text, header included) except
    ``seconds`` -- latencies, queueing, deadline misses and AoI included."""
    from .test_timing import PLUG, _without_seconds

    install()
    run_scenario(scenario_from_dict(PLUG), output=tmp_path / "inprocess")
    run_scenario(scenario_from_dict(dict(PLUG, executor="ray", workers=2)), output=tmp_path / "ray")
    a = _without_seconds(tmp_path / "inprocess" / "results.csv")
    assert len(a) == 1 + 2 * 3 * 2 and "latency_s" in a[0] and "aoi_s" in a[0]
    assert _without_seconds(tmp_path / "ray" / "results.csv") == a


def test_killed_ray_run_resumes_without_losing_a_job(tmp_path, ray_control):
    """``linksim run`` (a real subprocess, the Ray driver, on the module's cluster via ``address``)
    is killed with SIGKILL after its 2nd stored job; the rerun computes exactly the jobs that are
    not in points.jsonl, and the table equals an uninterrupted in-process run."""
    ray, control = ray_control
    install()
    log = tmp_path / "calls.log"
    control.write_text(json.dumps({"log": str(log), "sleep": "1.0"}))
    raw = dict(STUDY, address=ray.get_runtime_context().gcs_address)
    file, out = tmp_path / "s.yaml", tmp_path / "out"
    # one worker: a new driver's tasks need fresh worker processes (each imports torch), one is enough
    file.write_text(yaml.safe_dump(dict(raw, workers=1)))
    proc = subprocess.Popen([sys.executable, "-c", CLI, "run", str(file), "--output", str(out), "--no-figures"],
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    points = out / "points.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if points.exists() and points.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(1.5)  # the killed driver's running tasks end (Ray cancels a dead owner's tasks) or log
    done = {r["point"] for r in read_points(points)}
    assert 2 <= len(done) < 6
    control.write_text(json.dumps({"log": str(log), "sleep": "0"}))
    before = len(log.read_text().splitlines())
    run_scenario(scenario_from_dict(raw), output=out)
    assert len(log.read_text().splitlines()) - before == 6 - len(done)  # nothing finished is redone
    run_scenario(scenario_from_dict(dict(STUDY, executor="inprocess")), output=tmp_path / "ref")
    pd.testing.assert_frame_equal(_table(out), _table(tmp_path / "ref"))


def test_jobs_get_the_threads_they_request(tmp_path, ray_control, monkeypatch):
    """``threads: 2`` -> each Ray task requests 2 CPUs and its job runs with 2 torch threads;
    without ``threads`` 1 and 1. The options are those handed to ``ray.remote``."""
    ray, control = ray_control
    install()
    seen, remote = [], ray.remote

    def spy(*args, **options):
        seen.append(options)
        return remote(*args, **options)

    monkeypatch.setattr(ray, "remote", spy)
    for threads, expected in ((2, 2), (None, 1)):
        probe = tmp_path / f"threads{threads}.log"
        control.write_text(json.dumps({"threads": str(probe)}))
        raw = dict(STUDY, sweep={"ebno_db": [0, 1]}, workers=1, threads=threads)
        run_scenario(scenario_from_dict(raw), output=tmp_path / f"t{threads}")
        assert seen[-1] == {"num_cpus": expected, "num_gpus": 0.0, "max_retries": 0}
        assert [line.split()[1] for line in probe.read_text().splitlines()] == [str(expected)] * 2


def test_gpus_the_cluster_lacks_are_a_clear_error_not_a_hang(tmp_path, ray_control):
    install()
    raw = dict(STUDY, num_gpus=1)
    assert ray_options(scenario_from_dict(raw)) == {"num_cpus": 1, "num_gpus": 1.0, "max_retries": 0}
    t0 = time.monotonic()
    with pytest.raises(LinksimError, match=r"^executor: ray: each job requests num_gpus 1, but the largest node "
                                           r"of the Ray cluster has 0 GPUs; lower it or run on a cluster with GPUs"):
        run_scenario(scenario_from_dict(raw), output=tmp_path / "gpu")
    assert time.monotonic() - t0 < 30
    with pytest.raises(LinksimError, match=r"requests num_cpus 3, but the largest node of the Ray cluster has 2 CPUs"):
        run_scenario(scenario_from_dict(dict(STUDY, threads=3)), output=tmp_path / "cpu")


def test_ray_keys_need_executor_ray():
    from linksim.errors import ScenarioError

    install()
    for key, value in (("address", "auto"), ("num_gpus", 1)):
        with pytest.raises(ScenarioError, match=rf"{key}: {key} is a setting of executor: ray"):
            scenario_from_dict(dict(STUDY, executor="process", **{key: value}))
