"""Figure 8: the original image, DifferNet's gradient map and their overlay for a few
defective test images, read from the maps stored with ``--localize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from bench.paper import MTD, MVTEC, PAPER_DATASETS
from bench.report.data import PRESET_RANK, ReportData
from bench.report.figures.base import ReportFigure, placeholder, save, style
from bench.report.paper_refs import DIFFERNET
from bench.report.provenance import provenance

MAX_EXAMPLES = 6  # columns


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
    rows = data.rows(method=DIFFERNET, status="ok")
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
        png, pdf = placeholder(
            out_dir, key, title, "no gradient maps stored: run DifferNet with `--localize`"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, rows), placeholder=True)
    rank = {MVTEC: 0, MTD: 1}
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
        png, pdf = placeholder(
            out_dir, key, title, "maps stored, but none of their images was found"
        )
        return ReportFigure(key, title, base, png, pdf, provenance(data, rows), notes, True)
    n = len(examples)
    axes_style, context = style()
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
            name = {MVTEC: category, MTD: PAPER_DATASETS[MTD]}.get(
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
        png, pdf = save(fig, out_dir, key)
    used = rows[rows["cell_id"].isin({e[0].cell_id for e in examples})]
    configs = {
        (e[0].config.get("localize_sigma"), e[0].config.get("localize_rotations")) for e in examples
    }
    detail = "; ".join(f"blur sigma {s}, {r} rotations" for s, r in sorted(configs, key=str))
    datasets = ", ".join(sorted({e[0].dataset for e in examples}))
    caption = base + f" Dataset: {datasets}; {detail}."
    return ReportFigure(key, title, caption, png, pdf, provenance(data, used), notes)
