"""Crash-safe file writing (layer L0, docs/INTERNALS.md): whole files through a temporary file and an
atomic rename, appends fsynced; used by the results store, the figures and the saved images.

* whole files (``scenario.yaml``, ``summary.csv``, ``run.json``, figures, PNGs) are written to a
  temporary file in the same folder, fsynced and renamed over the old one (:func:`atomic_write_text`,
  :func:`atomic_path`), so a reader sees the old or the new file, never half of one; stale temporary
  files (:func:`is_tmp`) of a killed run are removed by :class:`linksim.store.ResultsStore`;
* :func:`append` adds text at the end of a file and fsyncs it (only the end can be torn by a crash).

Test-only fault injection: with ``LINKSIM_TEST_KILL_IN_WRITE=<file name>:<n>`` the process
``SIGKILL``\\ s itself halfway through its ``n``-th write to that file (after the first half of the
bytes reached the disk), the worst instant for a crash (``tests/linksim/test_store_crash.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Iterator

__all__ = ["FAULT_ENV", "atomic_path", "atomic_write_text", "append", "is_tmp"]

#: test-only: ``"<file name>:<n>"`` makes the process SIGKILL itself in the middle of its n-th write
#: to that file (see the module docstring)
FAULT_ENV = "LINKSIM_TEST_KILL_IN_WRITE"
_writes: dict[str, int] = {}


# -- crash-safe writing ----------------------------------------------------------------------------
def _fault_due(path: Path) -> bool:
    """Test-only (:data:`FAULT_ENV`): is this the write to ``path`` that must be killed halfway?"""
    fault = os.environ.get(FAULT_ENV)
    if not fault:
        return False
    name, _, n = fault.rpartition(":")
    if name != path.name:
        return False
    _writes[name] = _writes.get(name, 0) + 1
    return _writes[name] == int(n)


def _write(f, path: Path, data: bytes) -> None:
    """``f.write(data)`` + flush + fsync; the test-only fault hook may kill the process halfway."""
    if _fault_due(path):
        f.write(data[: max(len(data) // 2, 1)])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def _tmp_name(path: Path) -> Path:
    # same folder (rename is atomic only within a file system); the suffix is kept for savefig/PIL
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def is_tmp(p: Path) -> bool:
    """A temporary file of :func:`atomic_path` / :func:`atomic_write_text` (left by a killed run)."""
    return p.name.startswith(".") and ".tmp" in p.name


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed to ``path``.

    For writers that want a file name (``fig.savefig(tmp)``, ``Image.save(tmp)``): a crash leaves the
    old file (or none) and a stale temporary file that the next :class:`ResultsStore` removes.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        yield tmp
        with tmp.open("rb+") as f:
            if _fault_due(path):  # test hook: die with half of the file written, before the rename
                f.truncate(max(tmp.stat().st_size // 2, 1))
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        with tmp.open("wb") as f:
            _write(f, path, text.encode("utf-8"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def append(path: Path, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, flushed and fsynced before returning."""
    with path.open("ab") as f:
        _write(f, path, text.encode("utf-8"))
