"""``executor: ray`` (issue 11 item 4, issue 12 item 5): Ray binds loopback only, a job's error
arrives as the same one-line linksim error as in-process, and a failed job leaves the finished
rows stored, the pending jobs cancelled, and a rerun that completes to the uninterrupted table.

One local Ray instance (started by linksim's own :func:`linksim.executors.ray_init`, ~5 s) serves the
whole module. Ray's workers see the environment of the moment Ray started, so the plug-in's folder
(``PYTHONPATH``) and its control file are set before that.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

pytest.importorskip("ray")

from linksim.executors import ray_init  # noqa: E402

from .plugin_path import PLUGIN_DIR  # noqa: E402
from .test_executor_failure import check_failed_job, check_one_line_error  # noqa: E402


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
