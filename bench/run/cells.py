"""What a cell needs before it runs, and whether it is done: the one place that asks a cell's
split, checks its images and weights, and compares a record with the data on disk now.

``execute_cells`` checks every cell here before any training (``check_cells``), the runner and
the submitit executor skip what is ``recorded_on_same_data``, and ``bench.py verify`` asks
``data_problems`` of each record when given a data root.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.data import Split, load_split
from bench.data.base import corrupt_image
from bench.data.content import ContentKeys
from bench.data.fingerprint import same_data, split_fingerprint
from bench.errors import BenchError, MissingWeightsError
from bench.features import shared_backbone
from bench.run.suites import Cell
from bench.store.results import Record, ResultsStore

# Maps are stored as float16 (ResultsStore.write_maps): ties they create move a pixel metric a
# little from the float32 value the run computed.
PIXEL_TOLERANCE = 5e-3


@functools.lru_cache(maxsize=256)
def _split(dataset: str, category: str, root: Path, shots: int | None, seed: int,
           split_variant: str | None) -> Split:
    # The checks and the cell's run read the same split: list the folders once.
    return load_split(dataset, category, root, shots=shots, seed=seed,
                      split_variant=split_variant)


def cell_split(cell: Cell) -> Split:
    return _split(cell.dataset, cell.category, cell.data_root, cell.shots, cell.seed,
                  cell.split_variant)


def full_split(cell: Cell) -> Split:
    """The cell's split with its whole training set (what the data check reads, whatever the
    cell's shots)."""
    return _split(cell.dataset, cell.category, cell.data_root, None, cell.seed,
                  cell.split_variant)


def check_cells(cells: list[Cell], check_test: bool = True) -> dict[str, BenchError]:
    """What would make a cell fail before any training, by cell id: a corrupt image (named) or
    a backbone whose weights cannot be loaded. ``check_test=False``: the test images are not
    opened (model selection never uses them)."""
    problems: dict[str, BenchError] = {}
    broken: dict[Path, BenchError] = {}
    checked: set[Path] = set()
    for cell in cells:
        split = cell_split(cell)
        for sample in split.train + (split.test if check_test else []):
            if sample.path not in checked:
                checked.add(sample.path)
                problem = corrupt_image(sample.path)
                if problem is not None:
                    broken[sample.path] = problem
            if sample.path in broken:
                problems.setdefault(cell.cell_id, broken[sample.path])
    for backbone, stage in sorted({(c.backbone, getattr(c.config, "backbone_stage", None))
                                   for c in cells if c.backbone}, key=str):
        try:
            shared_backbone(backbone, stage)
        except MissingWeightsError as err:
            for cell in cells:
                if (cell.backbone, getattr(cell.config, "backbone_stage", None)) == (backbone, stage):
                    problems.setdefault(cell.cell_id, err)
    return problems


def preflight(cells: list[Cell], check_test: bool = True) -> None:
    """Fail fast, before any training, on the first problem ``check_cells`` finds."""
    for problem in check_cells(cells, check_test).values():
        raise problem


def recorded_on_same_data(store: ResultsStore, cell: Cell, fingerprint: str) -> bool:
    """Whether the cell has an ``ok`` record made on these very files (``fingerprint``: the
    split's content fingerprint). A record from before content fingerprints counts when its
    paths and sizes match; one from before any fingerprint, when its file names match."""
    record = store.read(cell)
    if record is None or record.get("status") != "ok":
        return False
    split = cell_split(cell)
    if record.get("data_fingerprint") is not None:
        return same_data(record["data_fingerprint"], split, cell.data_root, current=fingerprint)
    return (record.get("test_files") == [s.name for s in split.test]
            and record.get("train_files") == [s.path.name for s in split.train])


def already_recorded(store: ResultsStore, cell: Cell, keys: ContentKeys) -> tuple[bool, str]:
    """Whether the cell has an ``ok`` record made on the files its split holds now, and those
    files' fingerprint (a new record keeps it). ``keys``: the image cache's content keys, so
    each file is hashed once."""
    fingerprint = split_fingerprint(cell_split(cell), cell.data_root, keys)
    keys.save()
    return recorded_on_same_data(store, cell, fingerprint), fingerprint


def data_check(data_root: Path) -> Callable[[Record, ResultsStore], Iterator[str]]:
    """``bench.py verify --data-root``'s check of one record (``bench.store.verify`` knows no
    dataset): its fingerprint against the files under ``data_root`` now, and its pixel metrics
    recomputed from its stored maps and the masks."""
    return functools.partial(data_problems, data_root=Path(data_root))


def data_problems(record: Record, store: ResultsStore, data_root: Path) -> Iterator[str]:
    if record.data_fingerprint is None:
        return
    try:
        split = load_split(record.dataset, record.category, data_root, shots=record.shots,
                           seed=record.seed, split_variant=record.split_variant)
    except BenchError as err:
        yield f"its data cannot be listed under {data_root}: {err}"
        return
    if not same_data(record.data_fingerprint, split, data_root):
        yield (f"made on other data than {data_root} holds now (fingerprint "
               f"{record.data_fingerprint})")
        return
    if record.pixel_auroc is None and record.pro is None:
        return
    from bench.run.pixel_metrics import map_metrics  # torch: only when there are maps to check

    try:
        maps, files = store.read_maps(record.cell_id)
    except (OSError, ValueError, KeyError) as err:
        yield f"its maps ({store.maps_path(record.cell_id)}) cannot be read: {err}"
        return
    if files != [s.name for s in split.test]:
        yield "its maps belong to other test files than its split's"
        return
    again: dict[str, Any] = map_metrics(maps, split.test)
    for name in ("pixel_auroc", "pro"):
        stored = getattr(record, name)
        if stored is not None and not math.isclose(again[name], stored, rel_tol=0,
                                                   abs_tol=PIXEL_TOLERANCE):
            yield f"stored {name} {stored:.4f}, but its maps give {again[name]:.4f}"
