"""``bench.py verify``: check a results store the way ``git fsck`` checks a repository.

Every record readable and a record; its AUROC (and validation AUROC) recomputed from its
per-image scores and labels and equal to the stored number, its score lists as long as its
test set; no cell recorded twice; no stale lease and no temporary file a killed run left; and,
with a data root, each record's data fingerprint against the files on disk now and its pixel
metrics recomputed from its stored maps and the masks. One line per problem.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.atomic import stale_temporaries
from bench.data import load_split
from bench.data.fingerprint import same_data
from bench.errors import BenchError
from bench.leases import is_garbage, is_stale
from bench.leases import read as read_lease
from bench.metrics import image_auroc
from bench.results import Record, ResultsStore, UnreadableRecord, load_record_data, parse_record

AUROC_TOLERANCE = 1e-9  # recomputed from the very scores: equal but for float rounding
# Maps are stored as float16 (ResultsStore.write_maps): ties they create move a pixel metric a
# little from the float32 value the run computed.
PIXEL_TOLERANCE = 5e-3


@dataclass
class Report:
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        n = len(self.problems)
        return (f"verify: {self.records} record(s), {n} problem(s)"
                + ("" if n else ": the store is consistent"))


def verify_store(store: ResultsStore, data_root: Path | None = None) -> Report:
    report = Report()
    by_cell: dict[str, list[Path]] = defaultdict(list)
    for path in store.record_paths():
        report.records += 1
        try:
            record = parse_record(load_record_data(path))
        except UnreadableRecord as err:
            report.problems.append(f"{path}: unreadable: {err.why}")
            continue
        except FileNotFoundError:
            continue
        by_cell[record.cell_id].append(path)
        report.problems += [f"{path}: {p}"
                            for p in record_problems(record, path, store, data_root)]
    for cell_id, paths in sorted(by_cell.items()):
        if len(paths) > 1:
            report.problems.append(f"cell {cell_id} is recorded {len(paths)} times: "
                                   + ", ".join(map(str, paths)))
    report.problems += list(lease_problems(store))
    report.problems += [f"{path}: a temporary file left by a killed run (the next run removes "
                        "it)" for path in stale_temporaries(store.root)]
    return report


def record_problems(record: Record, path: Path, store: ResultsStore,
                    data_root: Path | None) -> Iterator[str]:
    """What is wrong with one readable record (``path``: where it was found)."""
    if Path(path).name != f"{record.cell_id}.json":
        yield f"holds cell {record.cell_id}, not the one its file name says"
    yield from _auroc_problems("AUROC", record.auroc, record.scores, record.labels,
                               record.n_test if record.auroc is not None else None)
    yield from _auroc_problems("validation AUROC", record.val_auroc, record.val_scores,
                               record.val_labels, None)
    if record.test_files and len(record.test_files) != len(record.scores):
        yield (f"{len(record.scores)} scores for {len(record.test_files)} test files")
    if data_root is not None and record.data_fingerprint is not None:
        yield from _data_problems(record, store, Path(data_root))


def _auroc_problems(name: str, stored: float | None, scores: list, labels: list,
                    n_test: int | None) -> Iterator[str]:
    if stored is None:
        if scores:
            yield f"per-image scores but no {name}"
        return
    if len(scores) != len(labels):
        yield f"{len(scores)} scores but {len(labels)} labels: its {name} cannot be recomputed"
        return
    if n_test is not None and len(scores) != n_test:
        yield f"{len(scores)} scores but n_test {n_test}"
    try:
        again = image_auroc(np.array(labels), np.array(scores, dtype=np.float64))
    except (ValueError, FloatingPointError) as err:
        yield f"its {name} cannot be recomputed from its scores ({err})"
        return
    if not math.isclose(again, stored, rel_tol=0, abs_tol=AUROC_TOLERANCE):
        yield f"stored {name} {stored:.6f}, but its scores give {again:.6f}"


def _data_problems(record: Record, store: ResultsStore, data_root: Path) -> Iterator[str]:
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
    from bench.localization import map_metrics  # torch: only when there are maps to check

    try:
        maps, files = store.read_maps(record.cell_id)
    except (OSError, ValueError, KeyError) as err:
        yield f"its maps ({store.maps_path(record.cell_id)}) cannot be read: {err}"
        return
    if files != [s.name for s in split.test]:
        yield "its maps belong to other test files than its split's"
        return
    again = map_metrics(maps, split.test)
    for name in ("pixel_auroc", "pro"):
        stored = getattr(record, name)
        if stored is not None and not math.isclose(again[name], stored, rel_tol=0,
                                                   abs_tol=PIXEL_TOLERANCE):
            yield f"stored {name} {stored:.4f}, but its maps give {again[name]:.4f}"


def lease_problems(store: ResultsStore) -> Iterator[str]:
    for path in sorted(store.leases_dir.glob("*.lease")):
        holder, age = read_lease(path)
        if holder is None:
            continue
        if is_garbage(holder):
            yield f"{path}: an unreadable lease file (the next run moves it aside)"
        elif is_stale(holder, age):
            yield f"{path}: a stale lease (its holder is gone; the next run takes it over)"
