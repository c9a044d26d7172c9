"""Tables for data the paper never used (a user's own folders, synthetic defects): AUROC per
category and method, mean ± 95 % CI over seeds. There is no paper number to stand beside them,
so they have a table of their own per dataset, shown first in the report."""

from __future__ import annotations

import pandas as pd

from bench.report.cells import CellStat, match, ours_texts
from bench.report.data import DESCRIPTIONS, FAILED, NOT_RUN, ReportData, dataset_title
from bench.report.paper_refs import method_order
from bench.report.provenance import provenance
from bench.report.tables.base import Table

MEAN_ROW = "mean of the categories run"


def _label(data: ReportData, method: str, shots, variant) -> str:
    label = data.label(method)
    if not pd.isna(shots):
        label += f" ({int(shots)} shots)"
    return label + (f" [{variant}]" if isinstance(variant, str) else "")


def _columns(rows: pd.DataFrame) -> list[tuple[str, int | None, str | None]]:
    """(method, shots, variant) per column: methods in the paper's order, the whole training
    set before few-shot runs, the plain configuration before named variants."""
    found = {(m, None if pd.isna(s) else int(s), v if isinstance(v, str) else None)
             for m, s, v in zip(rows["method"], rows["shots"], rows["variant"], strict=True)}
    rank = {m: i for i, m in enumerate(method_order(sorted({m for m, _, _ in found})))}
    return sorted(found, key=lambda c: (rank[c[0]], c[1] is not None, c[1] or 0, c[2] or ""))


def other_data_table(data: ReportData, dataset: str) -> Table:
    """One dataset the paper never used: AUROC in % per category (rows) and method (columns)."""
    rows = data.select(dataset=dataset)
    categories = sorted(set(rows["category"]))
    long = []
    for method, shots, variant in _columns(rows):
        key = {"dataset": dataset, "column": _label(data, method, shots, variant), "method": method,
               "shots": shots, "variant": variant}
        crows = match(rows, method, shots, variant=variant)
        stats = [CellStat.of(crows[crows["category"] == c]) for c in categories]
        long += [{**key, "category": c, **s.fields(), **s.origin()}
                 for c, s in zip(categories, stats, strict=True)]
        if len(categories) > 1:
            failed = any(s.status == FAILED for s in stats)
            mean = CellStat.mean_of(stats, crows, FAILED if failed else NOT_RUN)
            long.append({**key, "category": MEAN_ROW, **mean.fields(), **mean.origin()})
    frame = pd.DataFrame(long, columns=["dataset", "column", "method", "shots", "variant",
                                        "category", "ours", "ci95", "n_seeds", "status",
                                        "preset", "backbone", "cell_ids"])
    display = pd.DataFrame({"category": [*categories, *([MEAN_ROW] if len(categories) > 1
                                                        else [])]})
    for column, cells in frame.groupby("column", sort=False):
        display[column] = ours_texts(cells)
    title = dataset_title(dataset)
    caption = (
        f"Image-level AUROC in % on the `{dataset}` data"
        + (f" ({DESCRIPTIONS[dataset]})" if dataset in DESCRIPTIONS else "")
        + ", which the paper never used, so there is no paper number beside ours. One row per "
        "category, one column per method (few-shot runs and named variants get a column of "
        "their own): mean over seeds ± half-width of the t-based 95 % confidence interval "
        "where there are 2 or more seeds. The mean row averages the categories each method "
        "ran, its interval over seeds of the per-seed mean. 'not run': no record; 'failed': "
        "only failed records."
    )
    return Table(f"table_data_{dataset}", f"{title}, table: AUROC per category and method",
                 frame, display, caption, provenance(data, rows), dataset=dataset)


def other_data_tables(data: ReportData) -> list[Table]:
    return [other_data_table(data, d) for d in data.other_datasets()]
