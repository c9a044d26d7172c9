"""What every table and figure of the report starts from: the results store, read once.

``ReportData`` holds the tidy table (``ResultsStore.load()``) and the records themselves
(per-image scores for ROC curves and histograms). ``select`` picks, for each table cell
(``bench.store.results.TABLE_CELL``), the configuration (``bench.store.results.CONFIGURATION``) closest to
the paper's when a cell was run under several (a ``paper`` run over a ``fast`` one, AlexNet over
a substitute backbone); the others stay in the appendix.

Each row also carries the seed summary of its configuration (``bench.report.summary.seed_summary``,
computed once for the whole store): ``seed_group`` numbers the configurations
(``bench.store.results.SEED_GROUP``), ``group_seeds``, ``group_auroc`` and ``group_ci95`` are their
number of seeds, mean AUROC and 95 % CI half-width (fractions; NaN where none finished).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data import DATASETS
from bench.paper import PAPER_DATASETS as PAPER_DATASET_TITLES
from bench.paper import method_label
from bench.report.summary import seed_summary
from bench.store.results import (
    CELL_FIELDS,
    CONFIGURATION,
    SEED_GROUP,
    TABLE_CELL,
    Record,
    ResultsStore,
)

log = logging.getLogger(__name__)

NOT_RUN = "not run"
FAILED = "failed"
PAPER_BACKBONE = "alexnet"
PAPER_DATASETS = tuple(PAPER_DATASET_TITLES)
# The tidy table's split_variant for a dataset with one way to split (None in the record).
NO_SPLIT_VARIANT = "-"
# Data the paper never used: how the report names it.
DATASET_TITLES = {"folder": "Your own data", "synthetic": "Synthetic defects"}
DESCRIPTIONS = {"folder": "your own category folders, `--suite folder`",
                "synthetic": "generated textures with injected defects"}
# Which configuration of a cell to show when several were run: the paper's first.
PRESET_RANK = {"paper": 0, "code": 1, "cpu": 2, "fast": 3, "tiny": 4}


@dataclass
class ReportData:
    store: ResultsStore
    frame: pd.DataFrame  # the tidy table and each row's seed summary (see the module's doc)
    records: dict[str, Record]
    # Method -> the label its newest record carries (info["method_label"], from the method's
    # registration); records older than labels have none.
    labels: dict[str, str] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # data checks by fingerprint

    @classmethod
    def load(cls, results_dir: Path) -> ReportData:
        store = ResultsStore(Path(results_dir))
        # Once: the table and the records come from the same read.
        read = one_record_per_cell(store.records())
        frame = store.load(read)
        records = {r.cell_id: r for r in read}
        labels = {r.method: r.info["method_label"]
                  for r in sorted(read, key=lambda r: r.finished_at)
                  if isinstance(r.info.get("method_label"), str)}
        # So it groups and sorts.
        frame["split_variant"] = frame["split_variant"].fillna(NO_SPLIT_VARIANT)
        return cls(store, with_seed_summary(frame), records, labels, store.checks())

    def label(self, method: str) -> str:
        """How tables and figures name ``method``: the label its records carry, else (records
        older than labels) ``bench.paper.method_label``'s."""
        return self.labels.get(method) or method_label(method)

    def rows(self, **equal: Any) -> pd.DataFrame:
        """Rows whose columns equal the given values (None matches a missing value)."""
        frame = self.frame
        mask = pd.Series(True, index=frame.index)
        for column, value in equal.items():
            mask &= frame[column].isna() if value is None else frame[column] == value
        return frame[mask]

    def select(self, **equal: Any) -> pd.DataFrame:
        """Matching rows, keeping per cell only the configuration closest to the paper's."""
        return select_closest(self.rows(**equal))

    def records_of(self, rows: pd.DataFrame, ok_only: bool = True) -> list[Record]:
        return [
            self.records[c]
            for c, s in zip(rows["cell_id"], rows["status"])
            if s == "ok" or not ok_only
        ]

    def other_datasets(self) -> list[str]:
        """Datasets the paper never used (a user's folders first, then e.g. synthetic)."""
        found = set(self.frame["dataset"]) - set(PAPER_DATASETS)
        return sorted(found, key=lambda d: (d != "folder", d))


def one_record_per_cell(records: list[Record]) -> list[Record]:
    """The records, one per cell (``CELL_FIELDS``): of a cell recorded twice (a copied file,
    which ``bench.py verify`` names), the newest, said in one warning line."""
    newest: dict[tuple, Record] = {}
    for record in records:
        key = tuple(str(getattr(record, name)) for name in CELL_FIELDS)
        if key not in newest or record.finished_at > newest[key].finished_at:
            newest[key] = record
    if len(newest) < len(records):
        log.warning("%d record(s) repeat a cell recorded elsewhere; the report shows the newest "
                    "of each (bench.py verify names them)", len(records) - len(newest))
    return list(newest.values())


def with_seed_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its configuration's seed summary on every row."""
    frame = frame.assign(seed_group=frame.groupby(SEED_GROUP, dropna=False, sort=False).ngroup())
    summary = seed_summary(frame, by=["seed_group"]).set_index("seed_group")
    columns = {"seeds": "group_seeds", "auroc": "group_auroc", "ci95": "group_ci95"}
    return frame.join(summary[list(columns)].rename(columns=columns), on="seed_group")


def dataset_title(dataset: str) -> str:
    return DATASET_TITLES.get(dataset, f"Dataset {dataset}")


def _config_rank(group: pd.DataFrame) -> tuple:
    ok = group[group["status"] == "ok"]
    first = group.iloc[0]
    backbone = first["backbone"]
    return (
        ok.empty,  # a configuration with results before one that only failed
        bool(ok["reduced"].any()) if not ok.empty else True,
        PRESET_RANK.get(first["preset"], len(PRESET_RANK)),
        isinstance(backbone, str) and backbone != PAPER_BACKBONE,
        not default_split(first["dataset"], first["split_variant"]),
        -ok["seed"].nunique(),
        str(first["config_hash"]),
    )


def default_split(dataset: str, split_variant: str) -> bool:
    """Whether a row's split is its dataset's default (or the dataset has only one)."""
    spec = DATASETS.get(dataset)
    return split_variant == NO_SPLIT_VARIANT or (
        spec is not None and split_variant == spec.default_split_variant)


def select_closest(rows: pd.DataFrame) -> pd.DataFrame:
    """Per table cell, the rows of one configuration: the one closest to the paper's."""
    if rows.empty:
        return rows
    keep = []
    for _, cell in rows.groupby(list(TABLE_CELL), dropna=False, sort=False):
        configs = [g for _, g in cell.groupby(list(CONFIGURATION), dropna=False, sort=False)]
        keep.append(min(configs, key=_config_rank))
    return pd.concat(keep)


def ok_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of cells that finished (an empty frame stays as it is)."""
    return rows[rows["status"] == "ok"] if not rows.empty else rows
