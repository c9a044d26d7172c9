"""Writing a file so that a fault costs at most that file: every record, map, model, checkpoint
and cache entry is written under a temporary name beside its final one and renamed into place;
on any error the temporary file is removed. A full disk (or a read-only folder, or a quota) is
an ordinary failure, ``DiskFullError``, whose one line says which folder and how much it needs.

Temporary names carry the writer's host and pid (``.name.tmp-<host>-<pid>``), so a run that
starts can sweep the ones a killed process left behind (``sweep_temporaries``).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with atomic_path(folder / "a.txt") as tmp:
...     _ = tmp.write_text("done")
>>> sorted(p.name for p in folder.iterdir())
['a.txt']
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.errors import BenchError

log = logging.getLogger(__name__)
# No space, over quota, read-only file system: the folder cannot take the file.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
_TEMP = re.compile(r"^\..+\.tmp-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-\d+(\.[A-Za-z0-9]+)?$")
# Names earlier versions wrote under (``.name.<pid>.tmp``, ``.name.<pid>.<thread>.tmp``,
# ``.stem.<pid>.tmp.npz``, a checkpoint's ``.name.tmp``): no host, so judged by age alone.
_LEGACY_TEMP = re.compile(r"^\..+?(\.\d+){0,2}\.tmp(\.npz)?$")
STALE_TEMP_S = 3600.0  # a temporary file of another host's writer this old is abandoned


class DiskFullError(BenchError):
    """A folder cannot take a file (no space, a quota, read-only); the message names it."""

    def __init__(self, folder: Path, needed: int | None, cause: OSError | None = None):
        self.folder, self.needed = Path(folder), needed
        free = free_bytes(folder)
        need = f", about {_mb(needed)} needed" if needed else ""
        read_only = getattr(cause, "errno", None) == errno.EROFS
        what = {errno.EROFS: "is read-only", errno.EDQUOT: "is over its quota"}.get(
            getattr(cause, "errno", None), "is full")
        fix = "make it writable" if read_only else "free space there"
        super().__init__(f"the file system of {folder} {what} ({_mb(free)} free{need}); {fix} "
                         "(or point --results-dir / --cache-dir elsewhere) and rerun the same "
                         "command to finish.")

    def __reduce__(self):  # crosses process boundaries (--jobs workers) with its message intact
        return _rebuild_disk_full, (str(self), self.folder, self.needed)


def _rebuild_disk_full(message: str, folder: Path, needed: int | None) -> DiskFullError:
    err = DiskFullError.__new__(DiskFullError)
    BenchError.__init__(err, message)
    err.folder, err.needed = folder, needed
    return err


def _mb(n: int | None) -> str:
    return "? MB" if n is None else human_bytes(n)


def human_bytes(n: int) -> str:
    """``n`` bytes for a message: KB below a megabyte, MB below a gigabyte, else GB."""
    if n < 2**20:
        return f"{n / 2**10:.0f} KB"
    if n < 2**30:
        return f"{n / 2**20:.0f} MB"
    return f"{n / 2**30:.1f} GB"


def existing_parent(folder: Path) -> Path:
    """``folder`` or, when it does not exist yet, its nearest parent that does (the file system
    it will be on)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(folder: Path) -> int | None:
    """Free bytes of the file system ``folder`` is (or will be) on."""
    try:
        return shutil.disk_usage(existing_parent(folder)).free
    except OSError:
        return None


def temp_path(path: Path, suffix: str = "") -> Path:
    """The temporary name ``path`` is written under (``suffix`` for writers that insist on one,
    as NumPy's ``savez`` does on ``.npz``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}-{threading.get_ident()}{suffix}")


def is_disk_full(err: BaseException | None, folder: Path | None = None,
                 needed: int | None = None) -> bool:
    """An OSError of a full, over-quota or read-only folder. NumPy's writers report a short
    write without an errno ("N requested and M written", "problem writing element"): with
    ``folder``, such an error counts when the folder has less than a megabyte (or less than
    ``needed``) free."""
    if not isinstance(err, OSError):
        return False
    if err.errno in DISK_ERRNOS:
        return True
    if err.errno is not None:
        return False
    if "written" in str(err):
        return True
    free = free_bytes(folder) if folder is not None else None
    return free is not None and free < max(needed or 0, 2**20)


def raise_if_disk_full(err: BaseException, folder: Path, needed: int | None = None) -> None:
    """Re-raise ``err`` as ``DiskFullError`` when it is one (for writers that cannot go through
    ``atomic_path``)."""
    if is_disk_full(err, folder, needed):
        raise DiskFullError(folder, needed, err) from None


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "", needed: int | None = None) -> Iterator[Path]:
    """Yields the temporary path to write; renamed to ``path`` when the block ends without an
    error, removed when it raises. A full or read-only folder raises ``DiskFullError``."""
    path = Path(path)
    tmp = temp_path(path, suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        full = is_disk_full(err, path.parent, needed)  # judged while the partial file is there
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if full:
            raise DiskFullError(path.parent, needed, err) from None
        raise


def save_torch(path: Path, obj: object) -> Path:
    """``torch.save`` atomically: serialised in memory first, because torch's writer reports a
    full disk as a RuntimeError without an errno; the bytes then go through ``write_bytes``."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getbuffer())


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def stale_temporaries(folder: Path, stale_after: float = STALE_TEMP_S) -> list[Path]:
    """The temporary files under ``folder`` whose writer is gone: this host's dead processes,
    and any other host's (or an earlier version's) older than ``stale_after`` seconds."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale, now = [], time.time()
    for path in folder.rglob(".*.tmp*"):
        match = _TEMP.match(path.name)
        try:
            if not path.is_file():
                continue
            if match is not None and match["host"] == _HOST:
                gone = not pid_alive(int(match["pid"]))
            elif match is not None or _LEGACY_TEMP.match(path.name):
                gone = now - path.stat().st_mtime > stale_after
            else:
                continue
        except OSError:
            continue
        if gone:
            stale.append(path)
    return stale


def sweep_temporaries(folder: Path, stale_after: float = STALE_TEMP_S) -> list[Path]:
    """Remove ``stale_temporaries(folder)``; returns what went."""
    gone = []
    for path in stale_temporaries(folder, stale_after):
        with contextlib.suppress(OSError):
            path.unlink()
            gone.append(path)
    if gone:
        log.warning("removed %d temporary file(s) left by killed runs under %s", len(gone),
                    folder)
    return gone


def set_aside(path: Path, dest: Path) -> Path | None:
    """Move an unreadable file to ``dest`` (never deleted); None when another runner moved it
    first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, dest)
    except FileNotFoundError:
        return None
    return dest


def set_aside_unreadable(path: Path, err: BaseException, what: str) -> Path | None:
    """A cache file that failed to load: moved to ``unreadable/`` beside it (never trusted,
    never deleted) with one warning; its caller computes it again."""
    path = Path(path)
    moved = set_aside(path, path.parent / "unreadable" / path.name)
    log.warning("%s %s is unreadable (%s: %s); moved to %s and computed again", what, path,
                type(err).__name__, err, moved)
    return moved
