"""``bench.py verify``: check a results store the way ``git fsck`` checks a repository.

Every record readable and a record; its AUROC (and validation AUROC) recomputed from its
per-image scores and labels and equal to the stored number, its score lists as long as its
test set; no cell recorded twice; no stale lease and no temporary file a killed run left; and,
with a ``data_check`` (``bench.run.cells.data_check``: the store knows no dataset), whatever it
finds of each record against the data on disk now. One line per problem.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.metrics import image_auroc
from bench.store.atomic import stale_temporaries
from bench.store.leases import is_garbage, is_stale
from bench.store.leases import read as read_lease
from bench.store.results import (
    Record,
    ResultsStore,
    UnreadableRecord,
    load_record_data,
    parse_record,
)

AUROC_TOLERANCE = 1e-9  # recomputed from the very scores: equal but for float rounding
# One record's problems with the data it was made on (bench.run.cells.data_check).
DataCheck = Callable[[Record, ResultsStore], Iterable[str]]


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


def verify_store(store: ResultsStore, data_check: DataCheck | None = None) -> Report:
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
                            for p in record_problems(record, path, store, data_check)]
    for cell_id, paths in sorted(by_cell.items()):
        if len(paths) > 1:
            report.problems.append(f"cell {cell_id} is recorded {len(paths)} times: "
                                   + ", ".join(map(str, paths)))
    report.problems += list(lease_problems(store))
    report.problems += [f"{path}: a temporary file left by a killed run (the next run removes "
                        "it)" for path in stale_temporaries(store.root)]
    return report


def record_problems(record: Record, path: Path, store: ResultsStore,
                    data_check: DataCheck | None = None) -> Iterator[str]:
    """What is wrong with one readable record (``path``: where it was found)."""
    if Path(path).name != f"{record.cell_id}.json":
        yield f"holds cell {record.cell_id}, not the one its file name says"
    yield from _auroc_problems("AUROC", record.auroc, record.scores, record.labels,
                               record.n_test if record.auroc is not None else None)
    yield from _auroc_problems("validation AUROC", record.val_auroc, record.val_scores,
                               record.val_labels, None)
    if record.test_files and len(record.test_files) != len(record.scores):
        yield (f"{len(record.scores)} scores for {len(record.test_files)} test files")
    if data_check is not None:
        yield from data_check(record, store)


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


def lease_problems(store: ResultsStore) -> Iterator[str]:
    for path in sorted(store.leases_dir.glob("*.lease")):
        holder, age = read_lease(path)
        if holder is None:
            continue
        if is_garbage(holder):
            yield f"{path}: an unreadable lease file (the next run moves it aside)"
        elif is_stale(holder, age):
            yield f"{path}: a stale lease (its holder is gone; the next run takes it over)"
