"""The data checks: per checked split, a row per folder (images, modes, size, the median
statistics, the two-sample test of its embeddings against the training set) and what the check
flagged; the errors and warnings in words below."""

from __future__ import annotations

import pandas as pd

from bench.report.data import ReportData
from bench.report.data_checks import DATA_CHECKS_TITLE, flag_text, shown_checks
from bench.report.tables.base import Table

CAPTION = (
    "What the data looked like before training (`bench.py check`, also the first step of "
    "`run`), for the splits behind the records: per folder its images, their modes and median "
    "size, the median brightness (grey level, 0-1), contrast (its deviation over its mean) and "
    "sharpness (the variance of the Laplacian over the image's variance) of 128-pixel "
    "thumbnails, and for test folders an MMD two-sample test of backbone embeddings against "
    "the training set (permutation p-value) with its effect size, the AUROC of a classifier "
    "telling the folder from the training set (0.5: drawn like the training normals). Test normals unlike the training normals, and images in both "
    "the training and the test set, are errors: every number on that data is in doubt. Defect "
    "folders are expected to differ."
)
NOTE_CHARS = 400


def data_checks_tables(data: ReportData) -> list[Table]:
    """The data checks table, when the store holds any check (none: no table)."""
    return [data_checks_table(data)] if data.checks else []


def data_checks_table(data: ReportData) -> Table:
    checks = shown_checks(data.records.values(), data.checks)
    rows = []
    for check in checks:
        for split in check["splits"]:
            findings = [f for f in check["findings"] if f["severity"] != "info"
                        and (f["split"] == split["split"] or f["split"] is None
                             and split["split"] == "train")]
            rows.append({
                "dataset": check["dataset"], "category": check["category"],
                "split": split["split"], "images": split["images"],
                "modes": ", ".join(f"{m} {n}" for m, n in split["modes"].items()),
                "width": (split.get("width") or [None, None])[1],
                "height": (split.get("height") or [None, None])[1],
                **{k: split.get(k) for k in ("brightness", "contrast", "sharpness", "mmd_p",
                                             "classifier_auroc")},
                "flagged": "; ".join(f"{f['severity']}: {f['kind']}" for f in findings),
                "check": check["fingerprint"],
            })
    columns = ["dataset", "category", "split", "images", "modes", "width", "height",
               "brightness", "contrast", "sharpness", "mmd_p", "classifier_auroc", "flagged",
               "check"]
    frame = pd.DataFrame(rows, columns=columns)
    display = pd.DataFrame({
        "data": [f"{d}/{c}" for d, c in zip(frame["dataset"], frame["category"])],
        "split": frame["split"], "images": [str(n) for n in frame["images"]],
        "modes": frame["modes"],
        "size": [f"{w} x {h}" if w is not None else "–"
                 for w, h in zip(frame["width"], frame["height"])],
        "brightness": [_num(v, ".3f") for v in frame["brightness"]],
        "contrast": [_num(v, ".3f") for v in frame["contrast"]],
        "sharpness": [_num(v, ".3g") for v in frame["sharpness"]],
        "MMD p": [_num(v, ".3f" if v is None or pd.isna(v) or v >= 0.01 else ".1e")
                  for v in frame["mmd_p"]],
        "classifier AUROC": [_num(v, ".2f") for v in frame["classifier_auroc"]],
        "flagged": [f"⚠ {t}" if t else "" for t in frame["flagged"]],
    })
    notes = [f"{c['dataset']}/{c['category']} ({c['fingerprint']}): {flag_text(c)}."
             for c in checks if flag_text(c)]
    notes += [f"{c['dataset']}/{c['category']} {f['split'] or ''} {f['severity']} {f['kind']}: "
              + _cut(f["detail"])
              for c in checks for f in c["findings"] if f["severity"] != "info"]
    return Table("data_checks", f"{DATA_CHECKS_TITLE}: the data before training", frame,
                 display, CAPTION, None, notes)


def _num(value, spec: str) -> str:
    return "–" if value is None or pd.isna(value) else format(float(value), spec)


def _cut(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS - 3] + "..."
