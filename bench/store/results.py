"""The results folder: one JSON record per cell (``bench.store.record``), written atomically;
the tidy pandas table derived from them; the folder's layout and the claims on its cells.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.store import checks as stored_checks
from bench.store.atomic import atomic_path, set_aside, write_text
from bench.store.leases import STALE_AFTER_S, Lease, describe, is_garbage
from bench.store.leases import read as read_lease
from bench.store.record import (  # noqa: F401  (the store's names, imported from here)
    CELL_FIELDS,
    CONFIGURATION,
    FAILURES,
    SEED_GROUP,
    TABLE_CELL,
    TABLE_COLUMNS,
    Record,
    UnreadableRecord,
    load_record_data,
    parse_record,
    record_problem,
)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CacheLayout:
    """The folders under a cache root (``<results-dir>/.cache`` unless ``--cache-dir``): decoded
    images by content (``images/``), features by what they depend on (``features/``), synthetic
    validation splits (``validation/``)."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def validation(self) -> Path:
        return self.root / "validation"


class ResultsStore:
    """A results folder; the one place that knows its layout::

        records/<dataset>/<category>/<method>/<cell_id>.json   one record per cell
        leases/<cell_id>.lease        a runner's claim on a cell (bench.store.leases)
        maps/<cell_id>.npz            localization maps (run --localize)
        models/<cell_id>.pt           saved models (run --save-models)
        superseded/<why>/...          records set aside, never deleted: other-data (made on
                                      other files), failed (an attempt since retried),
                                      unreadable (records and leases that cannot be read; run
                                      moves them there and redoes the cell)
        checks/<fingerprint>.json     data checks (bench.store.checks), one per split checked
        selection/                    a store of its own for bench.py select's cells
        agreement/                    a store of its own for bench.py agreement's cells, and
                                      its studies/ (one JSON per study; the report's "How far
                                      to trust the validation" table)
        slurm/                        submitit's job files and task logs
        localize/                     Figure 8 panels (bench.py localize)
        .cache/                       caches (CacheLayout) and checkpoints/ of running cells
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    # -- the layout: every path under the results folder --------------------------------------
    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    def path(self, record_or_cell: Record | Any) -> Path:
        r = record_or_cell
        return self.records_dir / r.dataset / r.category / r.method / f"{r.cell_id}.json"

    def lease_path(self, cell: Any) -> Path:
        return self.root / "leases" / f"{cell.cell_id}.lease"

    def maps_path(self, cell_id: str) -> Path:
        return self.root / "maps" / f"{cell_id}.npz"

    def model_path(self, cell_id: str) -> Path:
        return self.root / "models" / f"{cell_id}.pt"

    @property
    def default_cache_dir(self) -> Path:
        return self.root / ".cache"

    def cache(self, cache_dir: Path | None = None) -> CacheLayout:
        """The caches under ``cache_dir`` (``--cache-dir``), or the store's own ``.cache/``."""
        return CacheLayout(Path(cache_dir) if cache_dir is not None else self.default_cache_dir)

    def checkpoint_path(self, cell_id: str) -> Path:
        # Beside the store, not in a shared --cache-dir: a checkpoint belongs to this grid.
        return self.default_cache_dir / "checkpoints" / f"{cell_id}.pt"

    @property
    def slurm_dir(self) -> Path:
        return self.root / "slurm"

    @property
    def localize_dir(self) -> Path:
        return self.root / "localize"

    @property
    def tracking_dir(self) -> Path:
        """The embedded experiment tracker's database and artifacts (bench.run.tracking)."""
        return self.root / "mlflow"

    @property
    def checks_dir(self) -> Path:
        return self.root / "checks"

    def check_path(self, fingerprint: str) -> Path:
        return self.checks_dir / f"{fingerprint}.json"

    def read_check(self, fingerprint: str) -> dict[str, Any] | None:
        """The data check stored under ``fingerprint``, or None (none, or unusable)."""
        return stored_checks.read_check(self.check_path(fingerprint))

    def write_check(self, check: dict[str, Any]) -> Path:
        return stored_checks.write_check(self.check_path(check["fingerprint"]), check)

    def checks(self) -> dict[str, dict[str, Any]]:
        """Every usable data check, by fingerprint (an unusable file: one warning line)."""
        found = (stored_checks.read_check(p) for p in sorted(self.checks_dir.glob("*.json")))
        return {c["fingerprint"]: c for c in found if c is not None}

    def selection(self) -> ResultsStore:
        """The store ``bench.py select`` writes to, apart from the records the report reads."""
        return ResultsStore(self.root / "selection")

    def agreement(self) -> ResultsStore:
        """The study place of ``bench.py agreement``: its records (validation and test scores
        of every grid point) and ``studies/`` (one JSON per study), never read by the main
        tables."""
        return ResultsStore(self.root / "agreement")

    @property
    def studies_dir(self) -> Path:
        """An agreement store's study summaries (``<results-dir>/agreement/studies/``)."""
        return self.root / "studies"

    def superseded_path(self, cell: Any, why: str) -> Path:
        return self.root / "superseded" / why / self.path(cell).relative_to(self.records_dir)

    @property
    def leases_dir(self) -> Path:
        return self.root / "leases"

    def record_paths(self) -> list[Path]:
        return sorted(self.records_dir.glob("**/*.json"))

    def has_records(self) -> bool:
        return self.records_dir.is_dir()

    # -- records ------------------------------------------------------------------------------
    def read(self, cell: Any) -> dict[str, Any] | None:
        """The cell's record as written (a dict), or None if there is none or it is unreadable
        (``problem`` says why)."""
        try:
            return load_record_data(self.path(cell))
        except (FileNotFoundError, UnreadableRecord):
            return None

    def problem(self, cell: Any) -> str | None:
        """Why the cell's record file cannot be read, or None (readable, or no file)."""
        try:
            load_record_data(self.path(cell))
        except FileNotFoundError:
            return None
        except UnreadableRecord as err:
            return err.why
        return None

    def is_done(self, cell: Any) -> bool:
        """A cell is done when an ``ok`` record exists; failed cells are tried again (the
        runner also checks that the record was made on the same data)."""
        record = self.read(cell)
        return record is not None and record.get("status") == "ok"

    def set_aside(self, cell: Any, why: str) -> Path | None:
        """Move the cell's record out of the table (kept under ``superseded/<why>/``)."""
        return set_aside(self.path(cell), self.superseded_path(cell, why))

    def set_aside_lease(self, cell: Any) -> Path | None:
        """Move an unreadable lease file aside (``superseded/unreadable/leases/``)."""
        path = self.lease_path(cell)
        return set_aside(path, self.root / "superseded" / "unreadable" / "leases" / path.name)

    def claim(self, cell: Any, stale_after: float = STALE_AFTER_S) -> Lease | None:
        """An exclusive lease on the cell (``bench.store.leases``), or None if a live runner
        holds it (``holder`` names it). A lease file that names no holder is moved aside first
        (``superseded/unreadable/leases/``), with one warning."""
        holder, _ = read_lease(self.lease_path(cell))
        if is_garbage(holder):
            log.warning("%s: its lease file is unreadable; moved to %s", cell.cell_id,
                        self.set_aside_lease(cell))
        return Lease.acquire(self.lease_path(cell), stale_after=stale_after)

    def holder(self, cell: Any) -> str:
        """Who holds the cell's lease, in words (host, pid, job)."""
        holder, _ = read_lease(self.lease_path(cell))
        return describe(holder or {})

    def write(self, record: Record) -> Path:
        # Atomic: a killed run or a full disk never leaves half a record (bench.store.atomic).
        return write_text(self.path(record), json.dumps(asdict(record), indent=1, default=str))

    def write_maps(self, cell_id: str, maps: np.ndarray, test_files: list[str]) -> Path:
        """Localization maps, compactly: float16, each map scaled to [0, 1] by its maximum
        (the scale kept beside it), compressed."""
        maps = np.asarray(maps, dtype=np.float32)
        scale = maps.reshape(len(maps), -1).max(axis=1)
        scale[scale == 0] = 1.0
        path = self.maps_path(cell_id)
        with atomic_path(path, suffix=".npz", needed=maps.nbytes // 2) as tmp:
            np.savez_compressed(tmp, maps=(maps / scale[:, None, None]).astype(np.float16),
                                scale=scale, test_files=np.array(test_files))
        return path

    def read_maps(self, cell_id: str) -> tuple[np.ndarray, list[str]]:
        """Maps (float32, original scale) and the test file names they belong to."""
        with np.load(self.maps_path(cell_id)) as data:
            maps = data["maps"].astype(np.float32) * data["scale"][:, None, None]
            return maps, [str(f) for f in data["test_files"]]

    def records(self) -> list[Record]:
        """Every readable record; the unreadable ones are named in one warning line (once per
        process) and left where they are (``run`` moves them aside, ``verify`` lists them)."""
        records, unreadable = [], []
        for path in self.record_paths():
            try:
                records.append(parse_record(load_record_data(path)))
            except (UnreadableRecord, FileNotFoundError) as err:
                if isinstance(err, UnreadableRecord):
                    unreadable.append(err)
        new = [e for e in unreadable if str(e.path) not in _WARNED]
        if new:
            _WARNED.update(str(e.path) for e in new)
            log.warning("skipped %d unreadable record(s): %s (run moves them to superseded/"
                        "unreadable/ and redoes their cells)", len(new),
                        "; ".join(f"{e.path} ({e.why})" for e in new))
        return records

    def record(self, cell: Any) -> Record | None:
        """The cell's record, or None."""
        data = self.read(cell)
        return None if data is None else parse_record(data)

    def load(self, records: list[Record] | None = None) -> pd.DataFrame:
        """The tidy table: one row per cell (per-image scores stay in the records); from
        ``records`` when the caller has read them already."""
        rows = []
        for r in self.records() if records is None else records:
            row = {c: getattr(r, c) for c in TABLE_COLUMNS if c != "max_eval_auroc"}
            row["max_eval_auroc"] = r.max_eval_auroc
            rows.append(row)
        frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        frame["shots"] = frame["shots"].astype("Int64")
        return frame


_WARNED: set[str] = set()  # unreadable records already named in this process
