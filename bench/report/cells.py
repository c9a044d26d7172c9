"""The row assembly every table shares: one table cell from its rows to the numbers a table
stores (``CellStat`` and its ``fields`` / ``compared`` / ``origin``) and the text it shows.

A cell's numbers are ``bench.report.summary.seed_summary`` of its rows (all the rows of one
configuration, after ``ReportData.select``; ``ReportData`` computes the summary once for the
whole store), in %: the mean over seeds and the half-width of the t-based 95 % confidence
interval. A mean over categories gets its interval over seeds of the per-seed mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from bench.report.data import FAILED, NOT_RUN, ok_rows
from bench.report.summary import ci95


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
    def of(cls, rows: pd.DataFrame) -> CellStat:
        """The seed summary of all the rows of one configuration of one table cell (read off
        the rows: ``ReportData`` puts it there)."""
        if rows.empty:
            return cls()
        first = rows.iloc[0]
        backbone = first["backbone"] if isinstance(first["backbone"], str) else "-"
        ok = ok_rows(rows)
        if ok.empty:
            return cls(status=FAILED, cell_ids=list(rows["cell_id"]), preset=first["preset"],
                       backbone=backbone)
        seeds = ok.iloc[0]
        if ok["seed_group"].nunique() > 1 or len(ok) != seeds["group_seeds"]:
            raise ValueError("CellStat.of summarises all the rows of one configuration")
        return cls(100 * float(seeds["group_auroc"]), 100 * float(seeds["group_ci95"]),
                   int(seeds["group_seeds"]), "ok", list(ok["cell_id"]), first["preset"],
                   backbone)

    @classmethod
    def of_values(cls, values: list[float], status: str, cell_ids: Iterable[str]) -> CellStat:
        """A cell computed from the records rather than read off them (values in %, one per
        seed), e.g. the multimodal model's AUROC on one category."""
        if not values:
            return cls(status=NOT_RUN if status == "ok" else status, cell_ids=list(cell_ids))
        return cls(float(sum(values) / len(values)), ci95(values), len(values), "ok",
                   list(cell_ids))

    @classmethod
    def mean_of(cls, stats: Iterable[CellStat], rows: pd.DataFrame,
                nothing: str = NOT_RUN) -> CellStat:
        """The mean over the cells that finished, with the CI over seeds of the per-seed mean;
        ``nothing`` is the status when none did."""
        done = [s for s in stats if s.status == "ok"]
        if not done:
            return cls(status=nothing)
        ids = [i for s in done for i in s.cell_ids]
        behind = ok_rows(rows)
        behind = behind[behind["cell_id"].isin(ids)]
        return cls(
            float(sum(s.mean for s in done) / len(done)),
            per_seed_mean_ci(behind),
            min(s.n_seeds for s in done),
            "ok",
            ids,
            ",".join(sorted(set(behind["preset"]))),
            ",".join(sorted(set(behind["backbone"].dropna()))),
        )

    def fields(self) -> dict:
        return {"ours": self.mean, "ci95": self.ci, "n_seeds": self.n_seeds,
                "status": self.status}

    def compared(self, paper: float) -> dict:
        """The paper's number beside ours, and the difference."""
        return {"paper": paper, "diff": self.mean - paper}

    def origin(self) -> dict:
        return {"preset": self.preset, "backbone": self.backbone,
                "cell_ids": ";".join(self.cell_ids)}

    def text(self) -> str:
        return format_stat(self.mean, self.ci, self.status)


def match(rows: pd.DataFrame, method: str | None, shots: int | None, **equal) -> pd.DataFrame:
    """The rows of one method at one training-set size (None: the whole set) whose other
    columns equal ``equal`` (None matches a missing value)."""
    if method is None or rows.empty:
        return rows.iloc[0:0]
    mask = rows["method"] == method
    for column, value in {"shots": shots, **equal}.items():
        mask &= rows[column].isna() if value is None else rows[column] == value
    return rows[mask]


def per_seed_mean_ci(rows: pd.DataFrame, by: str = "category") -> float:
    """CI over seeds of the mean over ``by`` (only seeds present in every group count)."""
    ok = ok_rows(rows)
    if ok.empty:
        return math.nan
    wide = ok.pivot_table(index="seed", columns=by, values="auroc", aggfunc="mean")
    complete = wide.dropna()
    return ci95(100 * complete.mean(axis=1)) if len(complete) >= 2 else math.nan


# -- What the tables show -------------------------------------------------------------------


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


def ours_texts(frame: pd.DataFrame) -> list[str]:
    return [format_stat(r.ours, r.ci95, r.status) for r in frame.itertuples()]


def compare_columns(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The "ours", "paper" and "Δ" columns of a table's rows."""
    return {
        "ours": ours_texts(frame),
        "paper": [format_number(v) for v in frame["paper"]],
        "Δ": [format_number(v, signed=True) for v in frame["diff"]],
    }


def seeds_texts(frame: pd.DataFrame) -> list[str]:
    return [str(n) if n else "–" for n in frame["n_seeds"]]
