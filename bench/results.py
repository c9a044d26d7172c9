"""One JSON record per cell, written atomically; a tidy pandas table derived from them.

A record holds everything needed to trust and redo a number: the cell, the fully resolved config
and preset, the AUROC, the per-image scores and labels, timings, peak memory, device, package
versions and the git commit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.atomic import atomic_path, set_aside, write_text
from bench.leases import STALE_AFTER_S, Lease

log = logging.getLogger(__name__)

# The one definition of a cell's identity. A paper-table cell (what a table row x column
# shows) is run under one or more configurations, each with one or more seeds. ``Cell.cell_id``
# spells these fields, a ``Record`` stores them, and the tidy table has them as columns.
TABLE_CELL = ("dataset", "category", "method", "shots", "variant")
CONFIGURATION = ("preset", "backbone", "split_variant", "validation", "config_hash")
CELL_FIELDS = (*TABLE_CELL, *CONFIGURATION, "seed")
# What the seed summaries average over seeds within.
SEED_GROUP = [*TABLE_CELL, *CONFIGURATION]
TABLE_COLUMNS = [
    *CELL_FIELDS, "auroc", "pixel_auroc", "pro", "val_auroc", "status", "failure", "reduced",
    "data_verified", "fit_s", "score_s", "peak_memory_mb", "n_train", "n_test", "max_eval_auroc",
    "cell_id",
]


# The reasons a cell fails without stopping the grid; each failed record names one.
FAILURES = {
    "diverged": "NaN or Inf in training",
    "out_of_memory": "out of memory",
    "corrupt_image": "an image or mask cannot be read",
    "missing_weights": "a backbone's pretrained weights cannot be loaded",
    "disk_full": "a folder could not take a file (no space, a quota, read-only); the run stops",
    "error": "any other error (its traceback is in the record's info)",
}


@dataclass
class Record:
    cell_id: str
    status: str  # "ok" or "failed"
    method: str
    dataset: str
    category: str
    seed: int
    shots: int | None  # None: the whole training set
    preset: str
    backbone: str | None
    variant: str | None  # a suite's named config variant (e.g. Table 3's A-G), else None
    config: dict[str, Any]
    config_hash: str
    reduced: bool  # True when the config departs from the paper's (a reduced or substitute run)
    departures: dict[str, Any] = field(default_factory=dict)  # config fields unlike the paper's
    # The dataset's split variant (MTD: "authors" or "random"), for datasets with several;
    # None elsewhere. Records written before it was general call it mtd_split (``parse_record``).
    split_variant: str | None = None
    # The preset the method ran for ``preset``: the same, or where the method has no such
    # preset, the one config.PRESET_FALLBACK leads to (None in records older than the rule).
    preset_applied: str | None = None
    # A validation split made from training normals ("synthetic"), and the AUROC on it: a
    # number to choose settings by without looking at the test set.
    validation: str | None = None
    val_auroc: float | None = None
    val_scores: list[float] = field(default_factory=list)
    val_labels: list[int] = field(default_factory=list)
    auroc: float | None = None  # image AUROC of the model after the last epoch
    # With --localize on data with masks: pixel AUROC and PRO (up to 30 % FPR) of the maps
    # (bench.localization; the two trivial references are in info["localization"]).
    pixel_auroc: float | None = None
    pro: float | None = None
    # (epoch, AUROC) pairs when evaluation during training was switched on; their maximum is
    # test-set selection, as the original code printed, and is reported only as such.
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    train_files: list[str] = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    fit_s: float | None = None
    score_s: float | None = None
    # The cell's peak resident set size (MB), and on CUDA the peak GPU memory allocated.
    peak_memory_mb: float | None = None
    peak_gpu_memory_mb: float | None = None
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    started_at: str = ""
    finished_at: str = ""
    error: str | None = None
    # Why a failed cell failed, one of FAILURES ("error" for anything unforeseen).
    failure: str | None = None
    # Which files the cell ran on (bench.data.fingerprint): a fingerprint of the split's paths
    # and contents (paths and sizes in older records), and whether they all matched the
    # dataset's verified-download manifest (None: the data root has no manifest, the data was
    # put there by hand).
    data_fingerprint: str | None = None
    data_verified: bool | None = None
    job_id: str | None = None  # the SLURM job (``<job>_<array task>``) that ran the cell
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def max_eval_auroc(self) -> float | None:
        return max((a for _, a in self.eval_history), default=None)


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
        leases/<cell_id>.lease        a runner's claim on a cell (bench.leases)
        maps/<cell_id>.npz            localization maps (run --localize)
        models/<cell_id>.pt           saved models (run --save-models)
        superseded/<why>/...          records set aside, never deleted: other-data (made on
                                      other files), failed (an attempt since retried),
                                      unreadable (records and leases that cannot be read; run
                                      moves them there and redoes the cell)
        selection/                    a store of its own for bench.py select's cells
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
        """The embedded experiment tracker's database and artifacts (bench.tracking)."""
        return self.root / "mlflow"

    def selection(self) -> ResultsStore:
        """The store ``bench.py select`` writes to, apart from the records the report reads."""
        return ResultsStore(self.root / "selection")

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
        """An exclusive lease on the cell (``bench.leases``), or None if a live runner holds it."""
        return Lease.acquire(self.lease_path(cell), stale_after=stale_after)

    def write(self, record: Record) -> Path:
        # Atomic: a killed run or a full disk never leaves half a record (bench.atomic).
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


class UnreadableRecord(Exception):
    """A record file that cannot be read or parsed, or does not hold a record."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def load_record_data(path: Path) -> dict[str, Any]:
    """A record file's content, checked against ``Record``'s fields (every required field
    there, each of its type); raises ``UnreadableRecord`` saying why it is not a record, and
    FileNotFoundError when there is no file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableRecord(path, f"cannot be read: {err}") from None
    except ValueError as err:
        raise UnreadableRecord(path, f"not JSON ({err})") from None
    why = record_problem(data)
    if why:
        raise UnreadableRecord(path, why)
    return data


def record_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a record (a missing field, a value of a wrong type), or
    None."""
    if not isinstance(data, dict):
        return f"holds a {type(data).__name__}, not a record"
    for f in dataclasses.fields(Record):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                return f"the field {f.name!r} is missing"
            continue
        if not _conforms(data[f.name], _HINTS[f.name]):
            return f"the field {f.name!r} holds {type(data[f.name]).__name__}, not {_HINTS[f.name]}"
    return None


def _conforms(value: Any, hint: Any) -> bool:
    """A shallow check of a JSON value against a type hint (containers by kind only)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return isinstance(value, hint) if isinstance(hint, type) else True


def parse_record(data: dict[str, Any]) -> Record:
    data["eval_history"] = [tuple(x) for x in data.get("eval_history", [])]
    # Records written before split variants were general: the field was mtd_split, and before
    # that, info["mtd_split"].
    legacy = data.pop("mtd_split", None) or data.get("info", {}).get("mtd_split")
    data.setdefault("split_variant", legacy)
    known = {f.name for f in dataclasses.fields(Record)}
    return Record(**{k: v for k, v in data.items() if k in known})  # newer fields: ignored


_HINTS = typing.get_type_hints(Record)
