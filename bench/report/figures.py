"""Figures 5-8 beside the paper's, drawn from the results store with matplotlib and seaborn.

Each function writes ``<key>.png`` and ``<key>.pdf`` and returns a ``ReportFigure`` whose
caption names the preset, backbone and seeds behind it. Where nothing was recorded the figure
is a placeholder that says "not run" (so the report never shows an empty frame or a made-up
curve). Only matplotlib's object API is used (no pyplot): nothing global changes, no display
is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image
from sklearn.metrics import roc_curve

from bench.paper import paper_auroc, paper_table
from bench.report.data import (
    NOT_RUN,
    PRESET_RANK,
    Provenance,
    ReportData,
    ok_rows,
    provenance,
)
from bench.report.tables import PAPER_MTD_RECALL_AT_0FP, _method_label, paper_to_method

DPI = 150
MAX_EXAMPLES = 6  # Figure 8 columns
HIST_CLIP_QUANTILE = 0.95  # Figure 6: the rightmost bar collects the top 5 % of scores


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


def _style():
    return sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85)


def _save(fig: Figure, out_dir: Path, key: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{key}.png", out_dir / f"{key}.pdf"
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    return png, pdf


def _placeholder(out_dir: Path, key: str, title: str, why: str) -> tuple[Path, Path]:
    fig = Figure(figsize=(6, 2.2))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(
        0.5,
        0.62,
        f"{title}: {NOT_RUN}",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
        color="0.35",
        transform=ax.transAxes,
    )
    ax.text(
        0.5,
        0.3,
        why,
        ha="center",
        va="center",
        fontsize=9,
        color="0.35",
        wrap=True,
        transform=ax.transAxes,
    )
    return _save(fig, out_dir, key)


def _palette(n: int) -> list:
    return sns.color_palette("colorblind", max(n, 1))


def _method_order(methods: list[str], paper_order: list[str]) -> list[str]:
    names = paper_to_method()
    ordered = [names[p] for p in paper_order if names.get(p) in methods]
    return ordered + sorted(set(methods) - set(ordered))


# -- Figure 5 ------------------------------------------------------------------------------


def figure5_roc(data: ReportData, out_dir: Path) -> ReportFigure:
    """ROC curves of every method on MTD (seeds averaged vertically on a common FPR grid)."""
    key, title = "fig5_roc_mtd", "Figure 5: ROC curves on Magnetic Tile Defects"
    rows = data.select(dataset="mtd", variant=None, shots=None)
    ok = ok_rows(rows)
    base = (
        "ROC curves of the methods on MTD (the paper's Figure 5). The star marks the paper's "
        f"statement that DifferNet reaches a recall of about {PAPER_MTD_RECALL_AT_0FP:.0f} % "
        "with no false positive (Sec. 4.3). With several seeds, thin lines are single seeds "
        "and the thick line their mean true positive rate at each false positive rate."
    )
    if ok.empty:
        png, pdf = _placeholder(
            out_dir, key, title, "no MTD records: run `bench.py run --suite mtd`"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, ok), placeholder=True)
    paper_order = list(paper_table("table2_mtd_auroc.csv")["method"])
    methods = _method_order(sorted(set(ok["method"])), paper_order)
    colors = dict(zip(methods, _palette(len(methods))))
    grid = np.linspace(0, 1, 501)
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(6.2, 5.4))
        ax = fig.subplots()
        for method in methods:
            records = data.records_of(ok[ok["method"] == method])
            curves = [roc_curve(r.labels, r.scores) for r in records]
            aurocs = [100 * r.auroc for r in records]
            label = f"{_method_label(method)} (ours, AUROC {np.mean(aurocs):.1f} %" + (
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
        differnet = paper_to_method().get("DifferNet")
        ax.scatter(
            [0],
            [PAPER_MTD_RECALL_AT_0FP / 100],
            marker="*",
            s=220,
            zorder=5,
            color=colors.get(differnet, "k"),
            edgecolor="k",
            label="paper: DifferNet, ≈ 50 % recall at 0 FP",
        )
        ax.set(
            xlabel="false positive rate",
            ylabel="true positive rate (recall)",
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            title="ROC curves, Magnetic Tile Defects",
        )
        ax.legend(loc="lower right", fontsize=8, frameon=True)
        png, pdf = _save(fig, out_dir, key)
    return ReportFigure(key, title, base, png, pdf, provenance(data, ok))


# -- Figure 6 ------------------------------------------------------------------------------


def figure6_histogram(data: ReportData, out_dir: Path) -> ReportFigure:
    """Normalised histogram of DifferNet's MTD scores, defect-free vs defective."""
    key, title = "fig6_scores_mtd", "Figure 6: DifferNet's anomaly scores on MTD"
    method = paper_to_method().get("DifferNet", "differnet")
    rows = data.select(dataset="mtd", method=method, variant=None, shots=None)
    ok = ok_rows(rows)
    base = (
        "Normalised histogram of DifferNet's anomaly scores (mean −log p_Z(z) over the test "
        "transforms, Eq. 5) for the MTD test images (the paper's Figure 6): each class sums "
        "to 1. The dashed line is the highest defect-free score; defective images right of it "
        "are found with no false positive."
    )
    if ok.empty:
        png, pdf = _placeholder(
            out_dir, key, title, "no DifferNet record on MTD: run `bench.py run --suite mtd`"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, ok), placeholder=True)
    first = ok.sort_values("seed").iloc[[0]]
    record = data.records_of(first)[0]
    scores, labels = np.asarray(record.scores, dtype=float), np.asarray(record.labels)
    threshold = float(scores[labels == 0].max())
    recall = 100 * float((scores[labels == 1] > threshold).mean())
    # The rightmost bar collects the top scores, but never hides the highest defect-free one.
    upper = max(float(np.quantile(scores, HIST_CLIP_QUANTILE)), threshold)
    clipped = np.minimum(scores, upper)
    share = 100 * float((scores >= upper).mean())
    frame = pd.DataFrame(
        {"score": clipped, "class": np.where(labels == 1, "defective", "defect-free")}
    )
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        sns.histplot(
            data=frame,
            x="score",
            hue="class",
            hue_order=["defect-free", "defective"],
            stat="probability",
            common_norm=False,
            bins=40,
            element="bars",
            alpha=0.55,
            palette=_palette(2),
            ax=ax,
        )
        ax.axvline(threshold, color="k", ls="--", lw=1)
        left, right = ax.get_xlim()
        to_left = threshold > (left + right) / 2
        ax.text(
            threshold,
            ax.get_ylim()[1] * 0.97,
            f"highest defect-free score \nrecall at 0 FP: {recall:.0f} % (paper ≈ 50 %) "
            if to_left
            else f" highest defect-free score\n recall at 0 FP: {recall:.0f} % (paper ≈ 50 %)",
            fontsize=8,
            va="top",
            ha="right" if to_left else "left",
        )
        ax.set(
            xlabel=f"anomaly score (scores ≥ {upper:.3g} collected in the rightmost bar)",
            ylabel="fraction of the class's test images",
            title=f"DifferNet scores on MTD (seed {int(first['seed'].iloc[0])})",
        )
        png, pdf = _save(fig, out_dir, key)
    caption = base + (
        f" Seed {int(first['seed'].iloc[0])} of {ok['seed'].nunique()} shown; "
        f"as the paper's rightmost bar (all scores above 3 on its scale), ours "
        f"collects the highest scores ({share:.1f} % of the images, from {upper:.3g} up)."
    )
    return ReportFigure(key, title, caption, png, pdf, provenance(data, first))


# -- Figure 7 ------------------------------------------------------------------------------


def figure7_fewshot(data: ReportData, out_dir: Path) -> ReportFigure:
    """AUROC against the number of training images, mean and spread over random subsets."""
    key, title = "fig7_fewshot", "Figure 7: AUROC against training-set size"
    method = paper_to_method().get("DifferNet", "differnet")
    rows = data.select(method=method, variant=None)
    ok = ok_rows(rows)
    base = (
        "DifferNet's image AUROC against the number of training images (the paper's "
        "Figure 7): the mean over the random training subsets (one per seed), error bars "
        "± 1 standard deviation over them; the rightmost point of a line is the whole "
        "training set. Stars: the paper's values (Table 1: whole set and 16 shots; Table 2: "
        "MTD whole set)."
    )
    groups = []
    if not ok.empty:
        for (dataset, category), group in ok.groupby(["dataset", "category"], sort=False):
            if group["shots"].notna().any():
                groups.append((dataset, category, group))
    if not groups:
        png, pdf = _placeholder(
            out_dir,
            key,
            title,
            "no few-shot records: run `bench.py fewshot --shots 2,4,8,16,all --runs 3`",
        )
        return ReportFigure(
            key, title, base, png, pdf, provenance(data, ok.iloc[0:0]), placeholder=True
        )
    rank = {"mtd": 0, "mvtec": 1}
    groups.sort(key=lambda g: (rank.get(g[0], 2), g[0], g[1]))
    colors = _palette(len(groups))
    used = []
    ticks: set[int] = set()
    whole: set[int] = set()  # x positions of whole training sets
    starred = False
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(7.2, 4.8))
        ax = fig.subplots()
        for color, (dataset, category, group) in zip(colors, groups):
            used.append(group)
            points = []
            for shots, sub in group.groupby(group["shots"].fillna(-1), sort=True):
                x = int(sub["n_train"].median()) if shots == -1 else int(shots)
                values = 100 * sub["auroc"].astype(float)
                spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                points.append((x, float(values.mean()), spread, shots == -1))
            points.sort()
            xs, ys, es, _ = zip(*points)
            ticks.update(xs)
            name = (
                "MTD"
                if dataset == "mtd"
                else (category if dataset == "mvtec" else f"{dataset}/{category}")
            )
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
                label=f"{name} ({n_subsets} subset{'s' if n_subsets > 1 else ''})",
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
            title="DifferNet: AUROC against training-set size",
        )
        handles, labels = ax.get_legend_handles_labels()
        if starred:
            star = Line2D([], [], marker="*", ls="", ms=11, color="0.6", markeredgecolor="k")
            handles.append(star)
            labels.append("paper (Tables 1-2)")
        ax.legend(handles, labels, fontsize=8, loc="lower right")
        png, pdf = _save(fig, out_dir, key)
    return ReportFigure(key, title, base, png, pdf, provenance(data, pd.concat(used)))


# -- Figure 8 ------------------------------------------------------------------------------


def _image_path(record, test_file: str) -> Path | None:
    root = record.info.get("root")
    if not root:
        return None
    if record.category == "all":  # pooled MVTec: "<category>/<defect>/<file>"
        category, rest = test_file.split("/", 1)
        return Path(root) / category / "test" / rest
    return Path(root) / record.category / "test" / test_file


def _mask_path(image: Path) -> Path:
    # <root>/<category>/test/<defect>/<file> -> <root>/<category>/ground_truth/<defect>/<stem>_mask.png
    return image.parents[2] / "ground_truth" / image.parent.name / f"{image.stem}_mask.png"


def figure8_localization(data: ReportData, out_dir: Path) -> ReportFigure:
    """Original image, DifferNet's gradient map and their overlay for a few defective images."""
    key, title = "fig8_localization", "Figure 8: localization examples"
    method = paper_to_method().get("DifferNet", "differnet")
    rows = data.rows(method=method, status="ok")
    rows = (
        rows[[data.store.maps_path(c).is_file() for c in rows["cell_id"]]]
        if not rows.empty
        else rows
    )
    base = (
        "Localization by DifferNet (the paper's Figure 8): top row the defective test image, "
        "middle row the gradient map (the loss back-propagated to the input, blurred, absolute "
        "values summed over channels, averaged over rotations; Sec. 3.3), bottom row the "
        "overlay; the white contour is the ground-truth defect where a mask exists. Each map "
        "is scaled to its own maximum. Examples: per run, the highest-scored image of each "
        "defect type."
    )
    notes: list[str] = []
    if rows.empty:
        png, pdf = _placeholder(
            out_dir, key, title, "no gradient maps stored: run DifferNet with `--localize`"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, rows), placeholder=True)
    rank = {"mvtec": 0, "mtd": 1}
    rows = rows.assign(
        _rank=[
            (rank.get(d, 2), isinstance(v, str), PRESET_RANK.get(p, len(PRESET_RANK)))
            for d, v, p in zip(rows["dataset"], rows["variant"], rows["preset"], strict=True)
        ]
    ).sort_values(["_rank", "category", "seed"])
    rows = rows.drop_duplicates(["dataset", "category"])  # one run per category, the paper's
    # configuration first
    queues = []
    for cell_id in rows["cell_id"]:
        record = data.records[cell_id]
        maps, files = data.store.read_maps(cell_id)
        index = {f: i for i, f in enumerate(files)}
        seen, queue = set(), []
        order = np.argsort(-np.asarray(record.scores))
        for i in order:
            f = record.test_files[i]
            defect = f.rsplit("/", 1)[0]
            if record.labels[i] != 1 or defect in seen or f not in index:
                continue
            seen.add(defect)
            queue.append((record, f, defect, maps[index[f]], float(record.scores[i])))
        queues.append(queue)
    examples = []
    while any(queues) and len(examples) < MAX_EXAMPLES:
        for queue in queues:
            if queue and len(examples) < MAX_EXAMPLES:
                record, f, defect, grad, score = queue.pop(0)
                path = _image_path(record, f)
                if path is None or not path.is_file():
                    notes.append(
                        f"{record.dataset}/{record.category} {f}: image not found at "
                        f"{path}, example skipped"
                    )
                    continue
                examples.append((record, f, defect, grad, score, path))
    if not examples:
        png, pdf = _placeholder(
            out_dir, key, title, "maps stored, but none of their images was found"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, rows), notes, True)
    n = len(examples)
    axes_style, context = _style()
    with axes_style, context:
        fig = Figure(figsize=(2.2 * n + 0.6, 7.0))
        axes = fig.subplots(3, n, squeeze=False)
        for j, (record, f, defect, grad, _score, path) in enumerate(examples):
            h, w = grad.shape
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))
            norm = grad / grad.max() if grad.max() > 0 else grad
            mask = None
            if _mask_path(path).is_file():
                with Image.open(_mask_path(path)) as m:
                    mask = np.asarray(m.convert("L").resize((w, h), Image.NEAREST)) > 0
            axes[0, j].imshow(image)
            axes[1, j].imshow(norm, cmap="inferno", vmin=0, vmax=1)
            axes[2, j].imshow(image)
            axes[2, j].imshow(norm, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if mask is not None and mask.any():
                axes[2, j].contour(mask, levels=[0.5], colors="white", linewidths=0.8)
            category = f.split("/", 1)[0] if record.category == "all" else record.category
            name = {"mvtec": category, "mtd": "MTD"}.get(
                record.dataset, f"{record.dataset}: {category}"
            )
            axes[0, j].set_title(f"{name}\n{defect.split('/')[-1]}", fontsize=9)
            for i in range(3):
                axes[i, j].set_xticks([])
                axes[i, j].set_yticks([])
                axes[i, j].grid(False)
        for i, label in enumerate(("original", "gradient map", "overlay")):
            axes[i, 0].set_ylabel(label, fontsize=10)
        fig.subplots_adjust(wspace=0.05, hspace=0.08)
        png, pdf = _save(fig, out_dir, key)
    used = rows[rows["cell_id"].isin({e[0].cell_id for e in examples})]
    configs = {
        (e[0].config.get("localize_sigma"), e[0].config.get("localize_rotations")) for e in examples
    }
    detail = "; ".join(f"blur sigma {s}, {r} rotations" for s, r in sorted(configs, key=str))
    datasets = ", ".join(sorted({e[0].dataset for e in examples}))
    caption = base + f" Dataset: {datasets}; {detail}."
    return ReportFigure(key, title, caption, png, pdf, provenance(data, used), notes)


def all_figures(data: ReportData, out_dir: Path) -> list[ReportFigure]:
    return [
        figure5_roc(data, out_dir),
        figure6_histogram(data, out_dir),
        figure7_fewshot(data, out_dir),
        figure8_localization(data, out_dir),
    ]


__all__ = [
    "ReportFigure",
    "all_figures",
    "figure5_roc",
    "figure6_histogram",
    "figure7_fewshot",
    "figure8_localization",
]
