"""What every table and figure of the report starts from: the results store, read once.

``ReportData`` holds the tidy table (``ResultsStore.load()``, plus the config hash and MTD split
of each cell) and the records themselves (per-image scores for ROC curves and histograms).
Two rules keep the report honest:

- ``select`` picks, for each cell of a table (dataset, category, method, shots, variant), the
  configuration closest to the paper's when a cell was run under several (a ``paper`` run over
  a ``fast`` one, AlexNet over a substitute backbone); the others stay in the appendix.
- ``provenance`` says, for the rows behind a table or figure, which presets, backbones and seeds
  they come from and flags everything that is not the paper's configuration.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config import REDUCED_PRESETS
from bench.results import Record, ResultsStore

NOT_RUN = "not run"
FAILED = "failed"
PAPER_BACKBONE = "alexnet"
MIN_SEEDS = 3  # Fig. 7 averages three random subsets; fewer seeds are flagged
# Which configuration of a cell to show when several were run: the paper's first.
PRESET_RANK = {"paper": 0, "code": 1, "fast": 2, "tiny": 3}
CELL_KEY = ["dataset", "category", "method", "shots", "variant"]
CONFIG_KEY = ["preset", "backbone", "config_hash", "mtd_split"]


@dataclass
class ReportData:
    store: ResultsStore
    frame: pd.DataFrame  # the tidy table, plus config_hash and mtd_split per cell
    records: dict[str, Record]

    @classmethod
    def load(cls, results_dir: Path) -> ReportData:
        store = ResultsStore(Path(results_dir))
        frame = store.load()
        records = {r.cell_id: r for r in store.records()}
        frame["mtd_split"] = frame["mtd_split"].fillna("-")
        return cls(store, frame, records)

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


def _config_rank(group: pd.DataFrame) -> tuple:
    ok = group[group["status"] == "ok"]
    first = group.iloc[0]
    backbone = first["backbone"]
    return (
        ok.empty,  # a configuration with results before one that only failed
        bool(ok["reduced"].any()) if not ok.empty else True,
        PRESET_RANK.get(first["preset"], len(PRESET_RANK)),
        isinstance(backbone, str) and backbone != PAPER_BACKBONE,
        first["mtd_split"] not in ("authors", "-"),
        -ok["seed"].nunique(),
        str(first["config_hash"]),
    )


def select_closest(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell (dataset, category, method, shots, variant), the rows of one configuration."""
    if rows.empty:
        return rows
    keep = []
    for _, cell in rows.groupby(CELL_KEY, dropna=False, sort=False):
        configs = [g for _, g in cell.groupby(CONFIG_KEY, dropna=False, sort=False)]
        keep.append(min(configs, key=_config_rank))
    return pd.concat(keep)


def ci95(values: Iterable[float]) -> float:
    """Half-width of the t-based 95 % confidence interval of the mean (NaN below 2 values)."""
    from scipy import stats

    arr = np.asarray(list(values), dtype=float)
    if len(arr) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))


@dataclass
class CellStat:
    """One table cell: mean AUROC in % over seeds, its CI, and where it comes from."""

    mean: float = math.nan
    ci: float = math.nan
    n_seeds: int = 0
    status: str = NOT_RUN  # "ok", "failed" or "not run"
    cell_ids: list[str] = field(default_factory=list)
    preset: str = ""
    backbone: str = ""

    @classmethod
    def of(cls, rows: pd.DataFrame, column: str = "auroc") -> CellStat:
        if rows.empty:
            return cls()
        ok = rows[rows["status"] == "ok"]
        first = rows.iloc[0]
        backbone = first["backbone"] if isinstance(first["backbone"], str) else "-"
        if ok.empty:
            return cls(
                status=FAILED,
                cell_ids=list(rows["cell_id"]),
                preset=first["preset"],
                backbone=backbone,
            )
        values = 100 * ok[column].astype(float)
        return cls(
            float(values.mean()),
            ci95(values),
            int(ok["seed"].nunique()),
            "ok",
            list(ok["cell_id"]),
            first["preset"],
            backbone,
        )

    def text(self) -> str:
        return format_stat(self.mean, self.ci, self.status)


def format_stat(mean: float, ci: float = math.nan, status: str = "ok") -> str:
    if status != "ok":
        return status
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return NOT_RUN
    return f"{mean:.1f}" if ci is None or math.isnan(ci) else f"{mean:.1f} ± {ci:.1f}"


def format_number(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


@dataclass
class Provenance:
    """Which presets, backbones and seeds lie behind a table or figure, and what departs from
    the paper's configuration."""

    presets: list[str]
    backbones: list[str]
    seeds_min: int
    seeds_max: int
    n_cells: int
    flags: list[str]
    mtd_splits: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.n_cells:
            return "No results recorded for this item yet."
        seeds = (
            str(self.seeds_min)
            if self.seeds_min == self.seeds_max
            else f"{self.seeds_min}-{self.seeds_max}"
        )
        line = (
            f"Preset: {', '.join(self.presets)}. Backbone: {', '.join(self.backbones)}. "
            f"Seeds per cell: {seeds} ({self.n_cells} record{'s' if self.n_cells != 1 else ''})."
        )
        if self.mtd_splits:
            line += f" MTD split: {', '.join(self.mtd_splits)}."
        return line

    def flag_text(self) -> str:
        if not self.n_cells:
            return ""
        if not self.flags:
            return "Paper's configuration (no departures recorded)."
        return "Not the paper's configuration: " + "; ".join(self.flags) + "."


def ok_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of cells that finished (an empty frame stays as it is)."""
    return rows[rows["status"] == "ok"] if not rows.empty else rows


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


def _method_notes(records: Iterable[Record]) -> list[str]:
    """What the records say about their methods (e.g. that one follows another paper)."""
    notes = {r.method: r.info.get("method_note") for r in records if r.info.get("method_note")}
    return [f"{m}: {note}" for m, note in sorted(notes.items())]


def provenance(
    data: ReportData, rows: pd.DataFrame, expected: Iterable[str] = (), min_seeds: int = MIN_SEEDS
) -> Provenance:
    """Provenance of the ``ok`` rows; ``expected`` are config fields the experiment itself
    changes (Table 3's variants, the multimodal run's coupling blocks), not flagged."""
    ok = ok_rows(rows)
    if ok.empty:
        return Provenance([], [], 0, 0, 0, [])
    presets = sorted(set(ok["preset"]))
    backbones = sorted(
        {b if isinstance(b, str) else "- (image-based method)" for b in ok["backbone"]}
    )
    seeds = ok.groupby(CELL_KEY, dropna=False)["seed"].nunique()
    flags = []
    # What each preset departs from the paper in, as recorded (not as the preset reads today).
    expected = set(expected) | {"backbone"}
    changes: dict[str, dict[str, set[str]]] = {}
    for record in data.records_of(ok):
        into = changes.setdefault(record.preset, {})
        for key, value in record.departures.items():
            if key not in expected:
                into.setdefault(key, set()).add(_short(value))
    for preset in presets:
        detail = ", ".join(f"{k}={'/'.join(sorted(v))}" for k, v in changes.get(preset, {}).items())
        if preset in REDUCED_PRESETS:
            flags.append(f"reduced preset '{preset}'" + (f" ({detail})" if detail else ""))
        elif detail and preset == "paper":
            flags.append(f"config changes on the 'paper' preset: {detail}")
        elif detail:
            flags.append(f"preset '{preset}' departs from the paper's text: {detail}")
    flags += _method_notes(data.records_of(ok))
    substitutes = [b for b in ok["backbone"].dropna().unique() if b != PAPER_BACKBONE]
    if substitutes:
        flags.append(f"substitute backbone {', '.join(sorted(substitutes))} instead of AlexNet")
    if seeds.min() < min_seeds:
        flags.append(
            f"{seeds.min()} seed{'s' if seeds.min() != 1 else ''} per cell where "
            f"{min_seeds} are wanted (no or a wide confidence interval)"
        )
    splits = sorted(set(ok["mtd_split"]) - {"-"})
    return Provenance(
        presets, backbones, int(seeds.min()), int(seeds.max()), len(ok), flags, splits
    )
