"""Figure 8 panels for chosen test images (``bench.py localize``): the image, its map with a
colour bar, and the overlay with the ground-truth contour, from the maps ``run --localize``
stored. Reads the store only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from bench.errors import BenchError
from bench.report.data import ReportData
from bench.report.figures.base import save, style
from bench.report.figures.fig8_localization import _image_path, _mask_path


def find_maps(data: ReportData, image: str, cell: str | None = None) -> list[tuple]:
    """(record, map) of every stored run whose test set has ``image`` (``defect/file`` or a
    bare file name), optionally only run ``cell``."""
    found = []
    for cell_id, record in sorted(data.records.items()):
        if (cell and cell_id != cell) or not data.store.maps_path(cell_id).is_file():
            continue
        maps, files = data.store.read_maps(cell_id)
        for i, name in enumerate(files):
            if image in (name, name.rsplit("/", 1)[-1]):
                found.append((record, name, maps[i]))
    return found


def localization_panels(data: ReportData, images: list[str], out_dir: Path,
                        cell: str | None = None) -> list[Path]:
    """One PNG (and PDF) per image and run: image | map with colour bar | overlay + contour."""
    written = []
    for image in images:
        found = find_maps(data, image, cell)
        if not found:
            raise BenchError(f"no stored map of {image!r}" + (f" in run {cell}" if cell else "")
                             + "; run with --localize, and name a test image as defect/file.")
        for record, name, grad in found:
            path = _image_path(record, name)
            if path is None or not path.is_file():
                raise BenchError(f"the image {name} of run {record.cell_id} is not at {path}; "
                                 "keep the dataset where it was run.")
            written.append(_panel(record, name, grad, path, out_dir))
    return written


def _panel(record, name: str, grad: np.ndarray, path: Path, out_dir: Path) -> Path:
    h, w = grad.shape
    with Image.open(path) as img:
        image = np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR))
    mask = None
    if _mask_path(path).is_file():
        with Image.open(_mask_path(path)) as m:
            mask = np.asarray(m.convert("L").resize((w, h), Image.NEAREST)) > 0
    score = record.scores[record.test_files.index(name)] if name in record.test_files else None
    axes_style, context = style()
    with axes_style, context:
        fig = Figure(figsize=(10, 3.6))
        axes = fig.subplots(1, 3)
        axes[0].imshow(image)
        axes[0].set_title(name + (f"\nscore {score:.3g}" if score is not None else ""), fontsize=9)
        shown = axes[1].imshow(grad, cmap="inferno")
        fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
        axes[1].set_title("gradient map", fontsize=9)
        axes[2].imshow(image)
        axes[2].imshow(grad / grad.max() if grad.max() > 0 else grad, cmap="jet", alpha=0.45)
        if mask is not None and mask.any():
            axes[2].contour(mask, levels=[0.5], colors="white", linewidths=0.8)
        axes[2].set_title("overlay, ground truth in white", fontsize=9)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        fig.suptitle(f"{record.method}, {record.dataset}/{record.category}, seed {record.seed}",
                     fontsize=10)
        key = f"{record.cell_id}__{name.replace('/', '__').rsplit('.', 1)[0]}"
        png, _pdf = save(fig, out_dir, key)
    return png
