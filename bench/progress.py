"""Progress bars that suit where the output goes: tqdm's bar on a terminal, plain log lines
(a few per stage, never carriage returns) when stderr is a file or a pipe."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

log = logging.getLogger("bench.progress")


class PlainProgress:
    """tqdm's ``update``/``close`` interface, logging "desc: i/n (elapsed)" at most every
    ``every`` seconds and once at the end."""

    def __init__(self, total: int | None, desc: str, every: float = 30.0, initial: int = 0):
        self.total, self.desc, self.every, self.n = total, desc, every, initial
        self.start = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._log(now)

    def _log(self, now: float) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        log.info("%s: %d%s (%.0f s)", self.desc, self.n, of, now - self.start)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        self._log(time.perf_counter())

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Silent(PlainProgress):
    def _log(self, now: float) -> None:
        pass


def progress(total: int | None, desc: str, enabled: bool = True, initial: int = 0, **kwargs: Any):
    """A progress bar for ``total`` steps: tqdm on a terminal, plain log lines otherwise,
    nothing when not ``enabled``."""
    if not enabled:
        return _Silent(total, desc, initial=initial)
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, initial=initial, **kwargs)
    return PlainProgress(total, desc, initial=initial)


class SuiteClock:
    """The suite's progress line: cell i of n, elapsed, and an ETA from the cells run so far
    (skipped cells take no time, so they do not count towards the mean)."""

    def __init__(self, total: int):
        self.total, self.done, self.ran = total, 0, 0
        self.begin = self.cell_start = time.perf_counter()
        self.run_seconds = 0.0

    def skipped(self) -> None:
        self.done += 1

    def start(self) -> None:
        self.cell_start = time.perf_counter()

    def finished(self) -> str:
        self.done += 1
        self.ran += 1
        self.run_seconds += time.perf_counter() - self.cell_start
        left = self.total - self.done
        eta = _duration(self.run_seconds / self.ran * left) if left else "0s"
        return (f"suite: cell {self.done} of {self.total}, elapsed "
                f"{_duration(time.perf_counter() - self.begin)}, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
