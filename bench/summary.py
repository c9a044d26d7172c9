"""Our AUROCs beside the paper's, derived from the tidy results table."""

from __future__ import annotations

import pandas as pd

from bench.detector import get_method
from bench.paper import paper_auroc

GROUP = ["dataset", "category", "method", "shots", "preset", "backbone", "variant"]


def with_paper(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean AUROC (%) over seeds per group, the paper's number and the difference."""
    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=[*GROUP, "seeds", "auroc_%", "std_%", "paper_%", "diff", "reduced"])
    ok["backbone"] = ok["backbone"].fillna("-")
    ok["variant"] = ok["variant"].fillna("-")
    grouped = ok.groupby(GROUP, dropna=False, sort=False)
    table = grouped.agg(
        seeds=("seed", "nunique"),
        auroc=("auroc", "mean"),
        std=("auroc", "std"),
        reduced=("reduced", "any"),
    ).reset_index()
    table["auroc_%"] = (100 * table.pop("auroc")).round(1)
    table["std_%"] = (100 * table.pop("std")).round(1)
    table["paper_%"] = [
        paper_auroc(r.dataset, r.category, get_method(r.method).paper_name,
                    None if pd.isna(r.shots) else int(r.shots))
        for r in table.itertuples()
    ]
    table["diff"] = (table["auroc_%"] - table["paper_%"]).round(1)
    return table[[*GROUP, "seeds", "auroc_%", "std_%", "paper_%", "diff", "reduced"]]
