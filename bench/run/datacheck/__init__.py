"""The data check (``bench.py check``, and the first step of ``run``): know the data before
training. Per dataset category: counts, image modes and sizes; exact and near copies within the
training set, within a test folder and between the two (leakage); test images unlike the
training normals (per-image statistics and a two-sample test on backbone embeddings); masks.

``check.py`` checks one split; ``images``, ``duplicates``, ``shift`` and ``masks`` are its parts.
What it finds is stored per check fingerprint (``bench.store.checks``), so a second run on the
same data pays nothing, records name it (``Record.data_check``), and the report reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.imagecache import ImageCache
from bench.run.cells import full_split
from bench.run.datacheck.check import (
    CHECK_VERSION,
    DEFAULT_BACKBONE,
    CheckOptions,
    check_fingerprint,
    check_split,
    stored_check,
)
from bench.run.suites import Cell
from bench.store.results import ResultsStore


def data_checks(cells: list[Cell], store: ResultsStore, options: CheckOptions,
                cache_dir: Path | None = None) -> tuple[dict[str, dict[str, Any]], int]:
    """Each cell's data check, by cell id (cells on the same split share one), and how many of
    the splits checked came from the store."""
    image_cache = ImageCache(store.cache(cache_dir).images)
    by_split: dict[tuple, dict[str, Any]] = {}
    out, reused = {}, 0
    for cell in cells:
        split = full_split(cell)
        key = (cell.dataset, cell.category, str(cell.data_root),
               tuple(s.path for s in split.train), tuple(s.path for s in split.test))
        if key not in by_split:
            by_split[key], cached = stored_check(split, cell.data_root, store, options,
                                                 image_cache)
            reused += cached
        out[cell.cell_id] = by_split[key]
    return out, reused


__all__ = ["CHECK_VERSION", "DEFAULT_BACKBONE", "CheckOptions", "check_fingerprint",
           "check_split", "data_checks", "stored_check"]
