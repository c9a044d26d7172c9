"""The one seed summary: per configuration of a cell, the number of seeds, the mean AUROC, its
standard deviation and the half-width of its t-based 95 % confidence interval; and the paper's
number beside it. The CLI and the report both read these columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bench.paper import PAPER_COLUMNS, paper_auroc, paper_name
from bench.store.results import SEED_GROUP

SUMMARY_COLUMNS = ["seeds", "auroc", "std", "ci95", "reduced"]


def ci95(values) -> float:
    """Half-width of the t-based 95 % confidence interval of the mean (NaN below two values)."""
    arr = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    if len(arr) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))


def seed_summary(frame: pd.DataFrame, by: list[str] = SEED_GROUP) -> pd.DataFrame:
    """One row per group of ``ok`` rows: seeds, mean AUROC, std, 95 % CI half-width, and
    whether any of them is reduced. AUROCs stay fractions (0-1)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=[*by, *SUMMARY_COLUMNS])
    grouped = ok.groupby(by, dropna=False, sort=False)
    table = grouped.agg(seeds=("seed", "nunique"), auroc=("auroc", "mean"),
                        std=("auroc", "std"), reduced=("reduced", "any")).reset_index()
    table["ci95"] = grouped["auroc"].apply(ci95).to_numpy()
    return table[[*by, *SUMMARY_COLUMNS]]


def with_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """The seed summary in %, with the paper's number and the difference."""
    columns = ["dataset", "category", "method", "shots", "preset", "backbone", "variant"]
    table = seed_summary(frame)
    out = table[[*columns, "seeds", "reduced"]].copy()
    out["backbone"] = out["backbone"].astype(object).fillna("-")
    out["variant"] = out["variant"].astype(object).fillna("-")
    for column in ("auroc", "std", "ci95"):
        out[f"{column}_%"] = (100 * table[column]).round(1)
    out["paper_%"] = [
        paper_auroc(r.dataset, r.category, paper_name(r.method),
                    None if pd.isna(r.shots) else int(r.shots))
        for r in out.itertuples()
    ]
    out["diff"] = (out["auroc_%"] - out["paper_%"]).round(1)
    # Wall time of one cell (fit + score, mean over seeds): what a rerun of the row costs here.
    # Grouped exactly as seed_summary groups, so the rows come in the same order.
    ok = frame[frame["status"] == "ok"]
    wall = ok.assign(minutes=(ok["fit_s"].fillna(0) + ok["score_s"].fillna(0)) / 60)
    groups = wall.groupby(SEED_GROUP, dropna=False, sort=False)
    out["minutes"] = groups["minutes"].mean().round(1).to_numpy()
    # Its peak resident memory (the largest over seeds): whether a rerun fits a machine.
    out["peak_mb"] = groups["peak_memory_mb"].max().round(0).to_numpy()
    return out[[*columns, "seeds", "auroc_%", "std_%", "ci95_%", "paper_%", "diff", "minutes",
                "peak_mb", "reduced"]]


def auroc_pivot(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean AUROC in % over seeds: one row per method, one column per category (a cell never
    run is missing). Where a method was run under several configurations in a category, the
    configuration columns that tell them apart (dataset, shots, preset, ...) join the rows, so
    different configurations are never averaged together."""
    table = seed_summary(frame)
    if table.empty:
        return pd.DataFrame(columns=["method"])
    rows = ["method"]
    for column in [c for c in SEED_GROUP if c not in ("method", "category")]:
        if not table.duplicated([*rows, "category"]).any():
            break
        if (table.groupby([*rows, "category"], dropna=False)[column].nunique(dropna=False) > 1).any():
            rows.append(column)
    for column in rows:  # a missing key (no variant, no backbone) must stay a row of its own
        table[column] = table[column].astype(object).where(table[column].notna(), "-")
    table["auroc"] = (100 * table["auroc"]).round(1)
    pivot = table.pivot(index=rows, columns="category", values="auroc")
    order = list(PAPER_COLUMNS)  # the paper's column order, then other methods by name

    def rank(key) -> tuple[int, str]:
        method = key[0] if isinstance(key, tuple) else key
        return (order.index(method) if method in order else len(order), str(key))

    pivot = pivot.loc[sorted(pivot.index, key=rank), sorted(pivot.columns)]
    pivot.columns.name = None
    return pivot.reset_index()
