"""Table 2: MTD image AUROC per method, beside the paper's Table 2, with Sec. 4.3's recall at
zero false positives."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.paper import MTD, paper_table
from bench.report.cells import CellStat, compare_columns, format_number, match, seeds_texts
from bench.report.data import ReportData
from bench.report.paper_refs import PAPER_MTD_RECALL_AT_0FP, paper_to_method, recall_at_zero_fp
from bench.report.provenance import provenance
from bench.report.tables.base import Table

CAPTION = (
    "Image-level AUROC in % on Magnetic Tile Defects beside the paper's Table 2 (mean over "
    "seeds, ± t-based 95 % CI where there are several). 'recall at 0 FP': the share of "
    "defective test images scored above every defect-free one, in % (Sec. 4.3 reports about "
    "50 % for DifferNet). 'not run': no record."
)


def table2(data: ReportData) -> Table:
    """MTD image AUROC per method, beside the paper's Table 2."""
    paper = paper_table("table2_mtd_auroc.csv").set_index("method")["auroc"]
    names = paper_to_method()
    rows = data.select(dataset=MTD, variant=None, shots=None)
    columns = [(label, names.get(label)) for label in paper.index]
    shown = {m for _, m in columns if m}
    for method in sorted(set(rows["method"]) - shown) if not rows.empty else []:
        columns.append((data.label(method), method))
    long = []
    for label, method in columns:
        cell = match(rows, method, None)
        stat = CellStat.of(cell)
        recalls = [recall_at_zero_fp(r.labels, r.scores) for r in data.records_of(cell)]
        ref = float(paper[label]) if label in paper.index else math.nan
        long.append({
            "column": label, "method": method, **stat.fields(), **stat.compared(ref),
            "recall_at_0fp": float(np.mean(recalls)) if recalls else math.nan,
            "paper_recall_at_0fp": PAPER_MTD_RECALL_AT_0FP if label == "DifferNet" else math.nan,
            **stat.origin(),
        })
    frame = pd.DataFrame(long)
    display = pd.DataFrame({
        "method": frame["column"],
        **compare_columns(frame),
        "recall at 0 FP, ours": [format_number(r.recall_at_0fp) if r.status == "ok" else r.status
                                 for r in frame.itertuples()],
        "recall at 0 FP, paper": ["≈ 50" if not math.isnan(v) else "–"
                                  for v in frame["paper_recall_at_0fp"]],
        "seeds": seeds_texts(frame),
        "preset": [p or "–" for p in frame["preset"]],
        "backbone": [b or "–" for b in frame["backbone"]],
    })
    used = pd.concat([match(rows, m, None) for _, m in columns])
    return Table("table2_mtd", "Table 2: Magnetic Tile Defects, AUROC per method", frame,
                 display, CAPTION, provenance(data, used))
