"""Before a run: will the results and cache folders hold what the planned cells write?

A coarse estimate, on the safe side where it can be: per cell still to run, its record (the
per-image scores), its maps with ``--localize`` (float16 at the image size, before
compression) and its saved model with ``--save-models``; per image and size, the decoded image
cache entry (three channels). Feature caches and checkpoints depend on the method and are left
out, so a warning is a floor, not a ceiling. The caller hands each planned cell with its split
(the store knows no dataset).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.store.atomic import existing_parent, free_bytes, human_bytes
from bench.store.results import ResultsStore

log = logging.getLogger(__name__)
RECORD_BYTES_PER_IMAGE = 120  # a score, a label and a file name in indented JSON
RECORD_BYTES = 64 * 1024  # config, provenance, versions, histories
MODEL_BYTES = 100 * 2**20  # a saved model: most are far smaller; a memory bank can be larger
DEFAULT_IMAGE_SIZE = 448  # the paper's input size, for methods that do not name theirs


def planned_bytes(planned: Sequence[tuple[Any, Any]], store: ResultsStore, cache_root: Path,
                  *, localize: bool = False, save_models: bool = False) -> dict[Path, int]:
    """Estimated bytes the cells not yet recorded will write, by folder (results, cache);
    ``planned``: (cell, its split) pairs."""
    results = cache = 0
    decoded: set[tuple[Path, int]] = set()
    for cell, split in planned:
        if store.path(cell).is_file():
            continue  # recorded (the run checks it was on the same data)
        size = int(getattr(cell.config, "image_size", DEFAULT_IMAGE_SIZE) or DEFAULT_IMAGE_SIZE)
        results += RECORD_BYTES + RECORD_BYTES_PER_IMAGE * (len(split.train) + len(split.test))
        if localize:
            results += 2 * size * size * len(split.test)
        if save_models:
            results += MODEL_BYTES
        for sample in (*split.train, *split.test):
            if (sample.path, size) not in decoded:
                decoded.add((sample.path, size))
                cache += 3 * size * size + 128
    return {store.root: results, Path(cache_root): cache}


def warn_if_short_of_space(planned: Sequence[tuple[Any, Any]], store: ResultsStore,
                           cache_root: Path, **options: bool) -> list[str]:
    """Warn (and return the warnings) where a folder's file system has less free space than the
    planned (cell, split) pairs are estimated to write there."""
    needs: dict[int | str, tuple[Path, int]] = {}
    for folder, need in planned_bytes(planned, store, cache_root, **options).items():
        device = _device(folder)  # two folders on one file system share its free space
        path, total = needs.get(device, (folder, 0))
        needs[device] = (path, total + need)
    warnings = []
    for folder, need in needs.values():
        free = free_bytes(folder)
        if free is not None and free < need:
            warnings.append(f"{folder} has {human_bytes(free)} free, less than the about "
                            f"{human_bytes(need)} the planned cells are estimated to write "
                            "there; free space or point --results-dir / --cache-dir elsewhere "
                            "(a full disk stops the run; rerun to finish).")
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _device(folder: Path) -> int | str:
    try:
        return os.stat(existing_parent(folder)).st_dev
    except OSError:
        return str(folder)
