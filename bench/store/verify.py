"""``bench.py verify``: check a results store the way ``git fsck`` checks a repository.

Every record readable, a record and, when ``ok``, whole (``bench.store.record.whole_problem``:
its AUROC and validation AUROC recomputed from its per-image scores and labels and equal to the
stored numbers, its score lists as long as its test set); no cell recorded twice; no stale
lease and no temporary file a killed run left; and, with a ``data_check``
(``bench.run.cells.data_check``: the store knows no dataset), whatever it finds of each record
against the data on disk now. One line per problem.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
    if data_check is not None:
        yield from data_check(record, store)


def lease_problems(store: ResultsStore) -> Iterator[str]:
    for path in sorted(store.leases_dir.glob("*.lease")):
        holder, age = read_lease(path)
        if holder is None:
            continue
        if is_garbage(holder):
            yield f"{path}: an unreadable lease file (the next run moves it aside)"
        elif is_stale(holder, age):
            yield f"{path}: a stale lease (its holder is gone; the next run takes it over)"
