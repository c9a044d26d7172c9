"""ROC curves per category for data the paper never used (a user's own folders, synthetic
defects): one panel per category, one curve per method, seeds averaged as in Figure 5."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from bench.report.data import ReportData, dataset_title, ok_rows
from bench.report.figures.base import ReportFigure, draw_roc, palette, placeholder, save, style
from bench.report.paper_refs import method_order
from bench.report.provenance import provenance

MAX_COLUMNS = 3


def other_data_roc(data: ReportData, dataset: str, out_dir: Path) -> ReportFigure:
    """One dataset the paper never used: ROC curves of every method, one panel per category."""
    key = f"fig_roc_{dataset}"
    title = f"{dataset_title(dataset)}, figure: ROC curves per category"
    ok = ok_rows(data.select(dataset=dataset, variant=None, shots=None))
    caption = (
        f"ROC curves on the `{dataset}` data, one panel per category, one curve per method "
        "trained on the whole training set (legend: its AUROC in %). With several seeds, thin "
        "lines are single seeds and the thick line their mean true positive rate at each false "
        "positive rate. The paper never used this data, so there is no curve of its to compare."
    )
    if ok.empty:
        png, pdf = placeholder(out_dir, key, title,
                               f"no finished whole-training-set run on '{dataset}'")
        return ReportFigure(key, title, caption, png, pdf, provenance(data, ok),
                            placeholder=True, dataset=dataset)
    categories = sorted(set(ok["category"]))
    methods = method_order(sorted(set(ok["method"])))
    colors = dict(zip(methods, palette(len(methods))))
    n_cols = min(len(categories), MAX_COLUMNS)
    n_rows = math.ceil(len(categories) / n_cols)
    axes_style, context = style()
    with axes_style, context:
        fig = Figure(figsize=(4.6 * n_cols, 4.4 * n_rows))
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for ax, category in zip(axes.flat, categories):
            rows = ok[ok["category"] == category]
            draw_roc(ax, data, rows, method_order(sorted(set(rows["method"]))), colors)
            ax.set_title(category)
            ax.legend(loc="lower right", fontsize=7, frameon=True)
        for ax in list(axes.flat)[len(categories):]:
            ax.set_axis_off()
        fig.suptitle(f"ROC curves on the '{dataset}' data")
        fig.tight_layout()
        png, pdf = save(fig, out_dir, key)
    return ReportFigure(key, title, caption, png, pdf, provenance(data, ok), dataset=dataset)


def other_data_figures(data: ReportData, out_dir: Path) -> list[ReportFigure]:
    return [other_data_roc(data, d, out_dir) for d in data.other_datasets()]
