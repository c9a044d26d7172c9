"""The appendix: every configuration recorded (failed ones included), one row per seed group
(``bench.store.results.SEED_GROUP``), beside the paper where it has a number."""

from __future__ import annotations

import math

import pandas as pd

from bench.paper import paper_auroc, paper_name
from bench.report.cells import CellStat, compare_columns
from bench.report.data import ReportData, ok_rows
from bench.report.provenance import provenance
from bench.report.tables.base import Table
from bench.store.results import SEED_GROUP

COLUMNS = [*SEED_GROUP, "seeds", "failed", "ours", "ci95", "status", "paper", "diff", "minutes",
           "peak_memory_mb", "reduced", "cell_ids"]


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _number(value, fmt: str) -> str:
    return "–" if _missing(value) else fmt.format(value)


def _group_row(key: tuple, group: pd.DataFrame) -> dict:
    row = {c: None if _missing(v) else v for c, v in zip(SEED_GROUP, key, strict=True)}
    stat = CellStat.of(group)
    shots = None if row["shots"] is None else int(row["shots"])
    ref = None
    if row["variant"] is None:  # the paper's number, for a method it ran (else None)
        ref = paper_auroc(row["dataset"], row["category"], paper_name(row["method"]), shots)
    ok = ok_rows(group)
    return {
        **row, "shots": shots, "seeds": stat.n_seeds,
        "failed": int((group["status"] != "ok").sum()),
        "ours": stat.mean, "ci95": stat.ci, "status": stat.status,
        **stat.compared(math.nan if ref is None else ref),
        # What a rerun costs here: wall minutes of one cell (fit + score, mean over seeds) and
        # its peak resident memory (the largest over seeds; None in records older than it).
        "minutes": ((ok["fit_s"].fillna(0) + ok["score_s"].fillna(0)).mean() / 60
                    if not ok.empty else None),
        "peak_memory_mb": (ok["peak_memory_mb"].max() if not ok.empty else None),
        "reduced": bool(ok["reduced"].any()) if not ok.empty else None,
        "cell_ids": ";".join(stat.cell_ids),
    }


def appendix(data: ReportData) -> Table:
    """Every configuration recorded (failed ones included), beside the paper where it has a
    number. Like ``bench.report.summary.with_paper``, but with failed configurations too and tolerant
    of records whose method is no longer registered."""
    frame = data.frame
    groups = frame.groupby(SEED_GROUP, dropna=False, sort=True) if not frame.empty else []
    table = pd.DataFrame([_group_row(key, group) for key, group in groups], columns=COLUMNS)
    display = pd.DataFrame({
        "dataset": table["dataset"],
        "category": table["category"],
        "method": table["method"],
        "shots": ["all" if s is None or pd.isna(s) else str(int(s)) for s in table["shots"]],
        "variant": [v or "–" for v in table["variant"]],
        "preset": table["preset"],
        "backbone": [b or "–" for b in table["backbone"]],
        "config": table["config_hash"],
        "seeds": table["seeds"].astype(str),
        "failed": table["failed"].astype(str),
        **compare_columns(table),
        "minutes": [_number(v, "{:.1f}") for v in table["minutes"]],
        "peak MB": [_number(v, "{:.0f}") for v in table["peak_memory_mb"]],
        "departs from paper": ["–" if r is None else ("yes" if r else "no")
                               for r in table["reduced"]],
    })
    failed = frame[frame["status"] != "ok"]
    caption = (
        "Every configuration recorded in the results store, one row per configuration (the "
        "tables above show, per cell, only the one closest to the paper's): mean AUROC in % "
        "over seeds (± t-based 95 % CI), the paper's number where it has one, the wall minutes of "
        "one cell (fit + score, mean over seeds) and its peak resident memory in MB (the largest "
        "over seeds; – in records older than the field), and whether the "
        f"configuration departs from the paper's. {len(frame)} records, of which "
        f"{len(failed)} failed."
    )
    return Table("appendix_all_results", "Appendix: every configuration recorded", table,
                 display, caption, provenance(data, frame))
