"""Localization, measured: pixel AUROC and PRO of the stored maps (``run --localize`` on data
with ground-truth masks) beside two trivial references on the same images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.paper import PAPER_DATASETS
from bench.report.cells import format_number, ok_rows
from bench.report.data import ReportData, dataset_title
from bench.report.provenance import provenance
from bench.report.tables.base import Table

CAPTION = (
    "Pixel-level scores of the localization maps (Sec. 3.3's gradient maps for DifferNet) "
    "against the ground-truth masks, mean over seeds, in %: pixel AUROC over all test pixels, "
    "and PRO (per-region overlap, integrated up to a false-positive rate of 30 % and "
    "normalised, as the MVTec AD evaluation defines it). Two references on the same images: a "
    "constant map (chance) and each pixel's distance to the mean training image (no learning). "
    "The paper reports no pixel-level number."
)
PAPER_TITLES = PAPER_DATASETS
REFERENCES = {"constant": "reference: constant map",
              "mean_image": "reference: distance to the mean training image"}


def localization(data: ReportData) -> Table:
    rows = ok_rows(data.rows(variant=None))
    rows = rows[rows["pixel_auroc"].notna()] if not rows.empty else rows
    out = []
    groups = rows.groupby(["dataset", "category", "method", "preset", "backbone"],
                          dropna=False, sort=True) if not rows.empty else []
    for (dataset, category, method, preset, backbone), group in groups:
        records = data.records_of(group)
        base = {"dataset": dataset, "category": category, "preset": preset,
                "backbone": backbone if isinstance(backbone, str) else "-", "seeds": len(records),
                "cell_ids": ";".join(group["cell_id"])}
        out.append({**base, "method": data.label(method), **_mean(records, "method")})
        for key, label in REFERENCES.items():
            out.append({**base, "method": label, **_mean(records, key)})
    frame = pd.DataFrame(out, columns=["dataset", "category", "method", "preset", "backbone",
                                       "seeds", "pixel_auroc", "pro", "cell_ids"])
    display = pd.DataFrame({
        "dataset": [PAPER_TITLES.get(d) or dataset_title(d) for d in frame["dataset"]],
        "category": frame["category"], "method": frame["method"], "preset": frame["preset"],
        "backbone": frame["backbone"], "seeds": frame["seeds"],
        "pixel AUROC": [format_number(v) for v in frame["pixel_auroc"]],
        "PRO (FPR <= 30 %)": [format_number(v) for v in frame["pro"]],
    })
    notes = [] if not frame.empty else [
        "not run: no record has localization scores (`run --localize` on data with masks)"]
    return Table("table_localization", "Localization: pixel AUROC and PRO", frame, display,
                 CAPTION, provenance(data, rows) if not rows.empty else None, notes)


def _mean(records, key: str) -> dict[str, float]:
    values = [r.info["localization"][key] for r in records if "localization" in r.info]
    return {metric: 100 * float(np.mean([v[metric] for v in values])) if values else np.nan
            for metric in ("pixel_auroc", "pro")}
