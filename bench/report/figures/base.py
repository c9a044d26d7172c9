"""What every figure shares: the ``ReportFigure`` it returns, the style, saving as PNG and PDF,
the "not run" placeholder, and ROC curves averaged over seeds.

Only matplotlib's object API is used (no pyplot): nothing global changes, no display is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from bench.report.data import NOT_RUN, ReportData
from bench.report.provenance import Provenance

DPI = 150


@dataclass
class ReportFigure:
    key: str  # file stem under figures/
    title: str
    caption: str
    png: Path
    pdf: Path
    provenance: Provenance | None = None
    notes: list[str] = field(default_factory=list)
    placeholder: bool = False
    dataset: str = ""  # set for data the paper never used: the report shows these first


def style():
    return sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85)


def palette(n: int) -> list:
    return sns.color_palette("colorblind", max(n, 1))


def save(fig: Figure, out_dir: Path, key: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{key}.png", out_dir / f"{key}.pdf"
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    return png, pdf


def placeholder(out_dir: Path, key: str, title: str, why: str) -> tuple[Path, Path]:
    """A figure that says "not run" and why, so the report never shows an empty frame."""
    fig = Figure(figsize=(6, 2.2))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.62, f"{title}: {NOT_RUN}", ha="center", va="center", fontsize=13,
            weight="bold", color="0.35", transform=ax.transAxes)
    ax.text(0.5, 0.3, why, ha="center", va="center", fontsize=9, color="0.35", wrap=True,
            transform=ax.transAxes)
    return save(fig, out_dir, key)


def draw_roc(ax: Axes, data: ReportData, ok: pd.DataFrame, methods: list[str], colors: dict,
             tag: str = "") -> None:
    """One ROC curve per method from the ``ok`` rows; with several seeds, thin lines per seed
    and a thick one for their mean true positive rate on a common false positive grid."""
    grid = np.linspace(0, 1, 501)
    for method in methods:
        records = data.records_of(ok[ok["method"] == method])
        curves = [roc_curve(r.labels, r.scores) for r in records]
        aurocs = [100 * r.auroc for r in records]
        label = f"{data.label(method)} ({tag}AUROC {np.mean(aurocs):.1f} %" + (
            f", {len(records)} seeds)" if len(records) > 1 else ")"
        )
        if len(curves) == 1:
            fpr, tpr, _ = curves[0]
            ax.plot(fpr, tpr, color=colors[method], lw=2, label=label)
        else:
            for fpr, tpr, _ in curves:
                ax.plot(fpr, tpr, color=colors[method], lw=0.7, alpha=0.35)
            mean = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr, _ in curves], axis=0)
            ax.plot(grid, mean, color=colors[method], lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)",
           xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
