"""Figure 7: DifferNet's AUROC against the number of training images, mean and spread over
the random training subsets (one per seed), beside the paper's values and beside the other
methods trained on the same subsets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.paper import MTD, MVTEC, paper_auroc
from bench.report.data import ReportData, ok_rows
from bench.report.figures.base import ReportFigure, palette, placeholder, save, style
from bench.report.paper_refs import DIFFERNET
from bench.report.provenance import provenance

COMPARED_STYLES = [("s", "--"), ("^", ":"), ("D", "-.")]


def _points(group: pd.DataFrame) -> list[tuple[int, float, float, bool]]:
    """(training images, mean AUROC %, std over subsets, whole set?) per training-set size."""
    points = []
    for shots, sub in group.groupby(group["shots"].fillna(-1), sort=True):
        x = int(sub["n_train"].median()) if shots == -1 else int(shots)
        values = 100 * sub["auroc"].astype(float)
        spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        points.append((x, float(values.mean()), spread, shots == -1))
    return sorted(points)


def _compared(data: ReportData, dataset: str, category: str) -> dict[str, dict]:
    """Methods other than DifferNet with few-shot records on this dataset and category."""
    rows = ok_rows(data.select(dataset=dataset, category=category, variant=None))
    out = {}
    methods = sorted(m for m in set(rows["method"]) - {DIFFERNET}
                     if rows.loc[rows["method"] == m, "shots"].notna().any())
    for (marker, ls), method in zip(COMPARED_STYLES * 4, methods):
        out[method] = {"rows": rows[rows["method"] == method], "marker": marker, "ls": ls}
    return out


def figure7_fewshot(data: ReportData, out_dir: Path) -> ReportFigure:
    """AUROC against the number of training images, mean and spread over random subsets."""
    key, title = "fig7_fewshot", "Figure 7: AUROC against training-set size"
    ok = ok_rows(data.select(method=DIFFERNET, variant=None))
    base = (
        "DifferNet's image AUROC against the number of training images (the paper's "
        "Figure 7): the mean over the random training subsets (one per seed), error bars "
        "± 1 standard deviation over them; the rightmost point of a line is the whole "
        "training set. Stars: the paper's values (Table 1: whole set and 16 shots; Table 2: "
        "MTD whole set). Dashed and dotted lines: other methods trained on the same subsets "
        "(`fewshot --methods differnet,knn,ocsvm`), in the same colour."
    )
    groups = []
    if not ok.empty:
        for (dataset, category), group in ok.groupby(["dataset", "category"], sort=False):
            if group["shots"].notna().any():
                groups.append((dataset, category, group))
    if not groups:
        png, pdf = placeholder(
            out_dir,
            key,
            title,
            "no few-shot records: run `bench.py fewshot --shots 2,4,8,16,all --runs 3`",
        )
        return ReportFigure(
            key, title, base, png, pdf, provenance(data, ok.iloc[0:0]), placeholder=True
        )
    rank = {MTD: 0, MVTEC: 1}
    groups.sort(key=lambda g: (rank.get(g[0], 2), g[0], g[1]))
    colors = palette(len(groups))
    used = []
    ticks: set[int] = set()
    whole: set[int] = set()  # x positions of whole training sets
    starred = False
    axes_style, context = style()
    with axes_style, context:
        fig = Figure(figsize=(7.2, 4.8))
        ax = fig.subplots()
        for color, (dataset, category, group) in zip(colors, groups):
            used.append(group)
            points = _points(group)
            xs, ys, es, _ = zip(*points)
            ticks.update(xs)
            name = (
                "MTD"
                if dataset == MTD
                else (category if dataset == MVTEC else f"{dataset}/{category}")
            )
            # Other methods trained on the same subsets (fewshot --methods ...), same colour.
            for method, style_ in _compared(data, dataset, category).items():
                other = style_["rows"]
                used.append(other)
                oxs, oys, oes, _ = zip(*_points(other))
                ticks.update(oxs)
                ax.errorbar(oxs, oys, yerr=oes, marker=style_["marker"], ms=4, capsize=2, lw=1.1,
                            ls=style_["ls"], color=color, alpha=0.8,
                            label=f"{name}, {data.label(method)}")
            n_subsets = int(group.groupby(group["shots"].fillna(-1))["seed"].nunique().max())
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                marker="o",
                ms=4,
                capsize=3,
                lw=1.5,
                color=color,
                label=f"{name}, DifferNet ({n_subsets} subset{'s' if n_subsets > 1 else ''})",
            )
            full = [p for p in points if p[3]]
            n_full = full[0][0] if full else None
            whole.update(p[0] for p in full)
            for shots, x in ((16, 16), (None, n_full)):
                ref = paper_auroc(dataset, category, "DifferNet", shots)
                if ref is not None and x is not None:
                    ax.scatter([x], [ref], marker="*", s=160, color=color, edgecolor="k", zorder=5)
                    ticks.add(x)
                    starred = True
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks))
        ax.set_xticklabels(
            [f"{t}\n(all)" if t in whole else str(t) for t in sorted(ticks)], fontsize=8
        )
        ax.minorticks_off()
        ax.set(
            xlabel="training images (log scale)",
            ylabel="image AUROC (%)",
            title="AUROC against training-set size",
        )
        handles, labels = ax.get_legend_handles_labels()
        if starred:
            star = Line2D([], [], marker="*", ls="", ms=11, color="0.6", markeredgecolor="k")
            handles.append(star)
            labels.append("paper (Tables 1-2)")
        ax.legend(handles, labels, fontsize=8, loc="lower right")
        png, pdf = save(fig, out_dir, key)
    return ReportFigure(key, title, base, png, pdf, provenance(data, pd.concat(used)))
