"""The multimodal run (Sec. 4.5): all 15 MVTec AD categories trained as one normal class."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.data import MVTEC_CATEGORIES
from bench.metrics import image_auroc
from bench.paper import MVTEC, paper_name, paper_table
from bench.report.cells import CellStat, compare_columns, format_number, match
from bench.report.data import ReportData
from bench.report.paper_refs import DIFFERNET, PAPER_MULTIMODAL_AUROC
from bench.report.provenance import provenance
from bench.report.tables.base import Table

CAPTION = (
    "All 15 MVTec AD categories trained as one normal class with 12 coupling blocks "
    "(`bench.py run --suite multimodal`; Sec. 4.5 'Multimodality' reports a mean AUROC of "
    "90.2 %). The first row is the mean of the per-category AUROCs of the one model (how we "
    "read the paper's 'mean AUROC'); the second ranks all test images together. The last "
    "column is the paper's Table 1 value of a model trained on that category alone. AUROC in %."
)


def per_category_aurocs(record) -> dict[str, float]:
    """AUROC in % of the one model on each category's test images (where both classes are)."""
    # pooled test files are "<category>/<defect>/<file>"
    categories = np.array([f.split("/", 1)[0] for f in record.test_files])
    labels, scores = np.asarray(record.labels), np.asarray(record.scores)
    out = {}
    for category in MVTEC_CATEGORIES:
        sel = categories == category
        if sel.any() and len(set(labels[sel])) == 2:
            out[category] = 100 * image_auroc(labels[sel], scores[sel])
    return out


def _method_rows(data: ReportData, rows: pd.DataFrame, method: str,
                 paper1: pd.DataFrame) -> list[dict]:
    mrows = match(rows, method, None)
    pooled = CellStat.of(mrows)
    per_record = [per_category_aurocs(r) for r in data.records_of(mrows)]
    means = [float(np.mean(list(aurocs.values()))) for aurocs in per_record if aurocs]
    per_cat = {c: [aurocs[c] for aurocs in per_record if c in aurocs] for c in MVTEC_CATEGORIES}
    column = paper_name(method)  # the method's column in the paper's Table 1, if any
    ref = PAPER_MULTIMODAL_AUROC if method == DIFFERNET else math.nan
    mean = CellStat.of_values(means, pooled.status, pooled.cell_ids)
    out = [
        {"method": method, "row": "mean of the per-category AUROCs", **mean.fields(),
         **mean.compared(ref), "table1": math.nan},
        {"method": method, "row": "pooled: one AUROC over all test images", **pooled.fields(),
         **pooled.compared(math.nan), "table1": math.nan},
    ]
    for category, values in per_cat.items():
        stat = CellStat.of_values(values, pooled.status, pooled.cell_ids)
        ref1 = float(paper1.loc[category, column]) if column in paper1.columns else math.nan
        out.append({"method": method, "row": category, **stat.fields(),
                    **stat.compared(math.nan), "table1": ref1})
    for row in out:
        row["cell_ids"] = ";".join(pooled.cell_ids)
    return out


def multimodal(data: ReportData) -> Table:
    """All 15 MVTec AD categories as one class (Sec. 4.5): mean of per-category AUROCs (the
    paper's measure), the pooled AUROC and each category's AUROC under the one model."""
    rows = data.select(dataset=MVTEC, category="all", variant=None, shots=None)
    paper1 = paper_table("table1_mvtec_auroc.csv").set_index("category")
    methods = sorted(set(rows["method"])) if not rows.empty else [DIFFERNET]
    frame = pd.DataFrame([r for m in methods for r in _method_rows(data, rows, m, paper1)])
    display = pd.DataFrame({
        "method": [data.label(m) for m in frame["method"]],
        "": frame["row"],
        **compare_columns(frame),
        "Table 1 (one model per category)": [format_number(v) for v in frame["table1"]],
    })
    return Table("table_multimodal", "Multimodal: all MVTec AD categories as one class", frame,
                 display, CAPTION, provenance(data, rows, expected=("n_coupling_blocks",)))
