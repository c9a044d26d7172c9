"""Claims on cells, so that several runners on one results folder (processes on one machine,
jobs on a cluster's shared file system) never run the same cell twice.

A lease is a small JSON file created atomically and exclusively (written under a temporary
name, then hard-linked to its final name: the link fails if the name exists, also over NFS).
It names its holder (host, pid and the process's start time, the SLURM job if any) and its
holder touches it every ``HEARTBEAT_S`` seconds. A lease is stale when its holder is known to
be dead (same host, that process gone) or silent for ``stale_after`` seconds (another host);
then the next runner takes it over. A requeued SLURM job takes over its own earlier lease at
once.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "cell.lease"
>>> lease = Lease.acquire(path)
>>> Lease.acquire(path) is None  # held by a live process: this one
True
>>> lease.release(); Lease.acquire(path) is not None
True
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.store.atomic import pid_alive, raise_if_disk_full

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
STALE_AFTER_S = 10 * 60.0  # a holder on another host silent this long is taken for dead
_TAKEOVER_STALE_S = 60.0  # a takeover marker left by a killed runner


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a live holder
    from a new process that reuses a dead holder's pid; None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    if not pid_alive(pid):
        return False
    return start is None or _process_start(pid) in (None, start)


def slurm_job() -> str | None:
    """This process's SLURM job (``<job>_<array task>`` in an array), or None."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return None if job is None else (f"{job}_{task}" if task is not None else job)


def holder_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid),
            "job": slurm_job(), "token": uuid.uuid4().hex, "since": time.time()}


def describe(holder: dict[str, Any]) -> str:
    job = f", job {holder['job']}" if holder.get("job") else ""
    return f"{holder.get('host')}:{holder.get('pid')}{job}"


class Lease:
    """A claim on one cell; ``release`` (or leaving a ``with`` block) gives it back."""

    def __init__(self, path: Path, holder: dict[str, Any], heartbeat_s: float):
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True,
                                        name=f"lease-{path.stem}")
        self._thread.start()

    @classmethod
    def acquire(cls, path: Path, *, stale_after: float = STALE_AFTER_S,
                heartbeat_s: float = HEARTBEAT_S) -> Lease | None:
        """The lease at ``path`` if it was free or stale (taken over); None if a live runner
        holds it."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise_if_disk_full(err, path.parent)
            raise
        holder = holder_identity()
        if _create(path, holder):
            return cls(path, holder, heartbeat_s)
        current, age = read(path)
        if current is None or not is_stale(current, age, stale_after):
            return None
        if not _take_over(path, current, holder):
            return None
        log.warning("took over the lease %s from %s (%s)", path.name, describe(current),
                    "requeued" if current.get("job") == holder["job"] else "dead or silent")
        return cls(path, holder, heartbeat_s)

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            current, _ = read(self.path)
            if current is None or current.get("token") != self.holder["token"]:
                log.error("lost the lease %s to %s; another runner may run this cell too",
                          self.path.name, describe(current or {}))
                return
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        self._stop.set()
        current, _ = read(self.path)
        if current is not None and current.get("token") == self.holder["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read(path: Path) -> tuple[dict[str, Any] | None, float]:
    """The lease's holder and its age in seconds since the last heartbeat (None, 0: no lease)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None, 0.0
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None, 0.0
    except (OSError, ValueError):
        return {}, age  # unreadable: judged by its age alone
    return (holder if isinstance(holder, dict) else {}), age


def is_stale(holder: dict[str, Any], age: float, stale_after: float = STALE_AFTER_S) -> bool:
    mine = slurm_job()
    if mine is not None and holder.get("job") == mine:
        return True  # this very job, before it was requeued
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return not _alive(holder["pid"], holder.get("start"))
    return age > stale_after


def is_garbage(holder: dict[str, Any] | None) -> bool:
    """A lease file that exists but names no holder (unreadable, or not a lease): it was never
    written by a runner, which links only complete files into place."""
    return holder is not None and not (isinstance(holder, dict) and holder.get("token"))


def _create(path: Path, holder: dict[str, Any]) -> bool:
    tmp = path.with_name(f".{path.name}.{holder['token']}")
    try:
        tmp.write_text(json.dumps(holder))
        os.link(tmp, path)  # atomic, and fails if a lease exists
        return True
    except FileExistsError:
        return False
    except OSError as err:
        raise_if_disk_full(err, path.parent)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, stale: dict[str, Any], holder: dict[str, Any]) -> bool:
    """Replace the stale lease; one runner at a time (a takeover marker), and only if the lease
    is still the stale one it judged."""
    marker = path.with_name(path.name + ".takeover")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            if time.time() - marker.stat().st_mtime > _TAKEOVER_STALE_S:
                marker.unlink(missing_ok=True)  # left by a killed runner; retry next time
        except FileNotFoundError:
            pass
        return False
    os.close(fd)
    try:
        current, _ = read(path)
        if current is not None and current.get("token") != stale.get("token"):
            return False  # someone else took it over meanwhile
        path.unlink(missing_ok=True)
        return _create(path, holder)
    finally:
        marker.unlink(missing_ok=True)
