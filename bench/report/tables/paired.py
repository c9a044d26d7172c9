"""DifferNet against the best other method on each dataset, paired on the same test images:
both AUROCs, the difference with a 95 % interval and DeLong's p-value
(``bench.report.comparison``; ``bench.py compare`` prints the same for any two methods)."""

from __future__ import annotations

import pandas as pd

from bench.paper import PAPER_DATASETS
from bench.report.comparison import COLUMNS, best_other, compare, format_p
from bench.report.data import ReportData, dataset_title, ok_rows
from bench.report.paper_refs import DIFFERNET
from bench.report.provenance import provenance
from bench.report.tables.base import Table

CAPTION = (
    "DifferNet against the method with the best mean AUROC among the others on each dataset "
    "(whole training sets), on the same test images: both AUROCs in % (the mean over the seeds "
    "both ran), the difference in points (DifferNet minus the other) with its 95 % interval, "
    "and the two-sided p-value of DeLong's test for correlated ROC curves. Seeds are pooled by "
    "averaging each test image's DeLong placement over them, so the test images are the "
    "sample (`python bench.py compare --methods A,B` for any pair). The other method is chosen "
    "as the best on these same test sets, and the p-value is not adjusted for that choice."
)


def paired_table(data: ReportData) -> Table:
    frames = []
    datasets = sorted(set(data.frame["dataset"]), key=lambda d: (d not in PAPER_DATASETS, d))
    for dataset in datasets:
        other = best_other(data, dataset, DIFFERNET)
        if other is not None:
            frames.append(compare(data, DIFFERNET, other, [dataset]).query("shots != shots"))
    frame = pd.concat(frames) if frames else pd.DataFrame(columns=COLUMNS)
    display = pd.DataFrame({
        "dataset": [PAPER_DATASETS.get(d, dataset_title(d)) for d in frame["dataset"]],
        "category": frame["category"],
        "DifferNet": [f"{v:.1f}" for v in frame["auroc_a"]],
        "best other": [f"{data.label(m)}: {v:.1f}" for m, v in
                       zip(frame["method_b"], frame["auroc_b"])],
        "difference": [f"{v:+.1f}" for v in frame["diff"]],
        "95 % interval": [f"[{lo:+.1f}, {hi:+.1f}]" for lo, hi in
                          zip(frame["ci_low"], frame["ci_high"])],
        "p (DeLong)": [format_p(p) for p in frame["p_value"]],
        "seeds": frame["seeds"].astype(str),
        "test images": frame["n_test"].astype(str),
    })
    used = ok_rows(data.select(shots=None, variant=None))
    used = used[used["dataset"].isin(set(frame["dataset"]))
                & used["method"].isin({DIFFERNET, *frame["method_b"]})] if not used.empty else used
    return Table("table_paired", "DifferNet against the best other method, paired", frame,
                 display, CAPTION, provenance(data, used))
