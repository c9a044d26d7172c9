"""Figure 5: ROC curves of every method on MTD, with the paper's recall at zero false
positives marked."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from bench.paper import MTD, paper_table
from bench.report.data import ReportData, ok_rows
from bench.report.figures.base import ReportFigure, draw_roc, palette, placeholder, save, style
from bench.report.paper_refs import DIFFERNET, PAPER_MTD_RECALL_AT_0FP, method_order
from bench.report.provenance import provenance


def figure5_roc(data: ReportData, out_dir: Path) -> ReportFigure:
    """ROC curves of every method on MTD (seeds averaged vertically on a common FPR grid)."""
    key, title = "fig5_roc_mtd", "Figure 5: ROC curves on Magnetic Tile Defects"
    ok = ok_rows(data.select(dataset=MTD, variant=None, shots=None))
    base = (
        "ROC curves of the methods on MTD (the paper's Figure 5). The star marks the paper's "
        f"statement that DifferNet reaches a recall of about {PAPER_MTD_RECALL_AT_0FP:.0f} % "
        "with no false positive (Sec. 4.3). With several seeds, thin lines are single seeds "
        "and the thick line their mean true positive rate at each false positive rate."
    )
    if ok.empty:
        png, pdf = placeholder(out_dir, key, title, "no MTD records: run `bench.py run --suite mtd`")
        return ReportFigure(key, title, base, png, pdf, provenance(data, ok), placeholder=True)
    paper_order = list(paper_table("table2_mtd_auroc.csv")["method"])
    methods = method_order(sorted(set(ok["method"])), paper_order)
    colors = dict(zip(methods, palette(len(methods))))
    axes_style, context = style()
    with axes_style, context:
        fig = Figure(figsize=(6.2, 5.4))
        ax = fig.subplots()
        draw_roc(ax, data, ok, methods, colors, tag="ours, ")
        ax.scatter([0], [PAPER_MTD_RECALL_AT_0FP / 100], marker="*", s=220, zorder=5,
                   color=colors.get(DIFFERNET, "k"), edgecolor="k",
                   label="paper: DifferNet, ≈ 50 % recall at 0 FP")
        ax.set_title("ROC curves, Magnetic Tile Defects")
        ax.legend(loc="lower right", fontsize=8, frameon=True)
        png, pdf = save(fig, out_dir, key)
    return ReportFigure(key, title, base, png, pdf, provenance(data, ok))
