"""How far to trust the validation: the stored agreement studies (``bench.py agreement``,
``<results-dir>/agreement/studies/``), per dataset x method x validation recipe mix, how far the
synthetic validation ranked the grid as the test set did (``bench.report.trust``).

The latest study of each kind (dataset, methods, preset, backbone, seeds, grid, default mix) is
shown; its rows are the recipe mixes (v1, the default) and the recipes combined by Borda
count; every recipe's row is in the table's CSV."""

from __future__ import annotations

import json
import logging
import math

import pandas as pd

from bench.paper import PAPER_DATASETS, method_label
from bench.report.data import ReportData, dataset_title
from bench.report.tables.base import Table
from bench.report.trust import ANOTHER_SEED, COMBINED

log = logging.getLogger(__name__)
CAPTION = (
    "For each agreement study (a grid of configurations, each fitted once and scored on the "
    "synthetic validation split and on the test set): Kendall's tau-b and Spearman's rho "
    "between the points' validation and test AUROCs, the selection regret (test AUROC of the "
    "test-best point minus that of the validation-best, in points), with 95 % intervals from "
    "resampling the validation and test images; whether the test-best point is among the "
    "validation's top 3; and beside them the regret of the preset's own point and the expected "
    "regret of a random pick. 'val median (IQR)': the validation AUROC's median and "
    "interquartile range over the points (a validation that saturates near 1 cannot rank). "
    "With two or more seeds, 'test of another seed' puts one seed's test AUROCs in the "
    "validation's place and another seed's as the test (the mean over pairs of seeds): how far "
    "the test's own ranking repeats between training runs, the most a validation can reach. "
    "Test labels are read here to measure the validation only."
)
COLUMNS = ["dataset", "method", "preset", "backbone", "points", "recipe", "val_median", "val_iqr",
           "kendall_tau_b", "kendall_tau_b_ci", "spearman", "spearman_ci", "regret", "regret_ci",
           "test_best_in_top3", "default_regret", "random_regret", "study", "seeds"]


def _studies(data: ReportData) -> list[dict]:
    folder = data.store.agreement().studies_dir
    latest: dict[tuple, dict] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            study = json.loads(path.read_text())
            kind = (study["dataset"], tuple(study["methods"]), study["preset"],
                    study.get("backbone"), tuple(study.get("seeds") or ()), study.get("grid"),
                    study["default_mix"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("skipped the unreadable study %s (%s)", path, err)
            continue
        study["file"] = path.name
        if kind not in latest or study["written_at"] >= latest[kind]["written_at"]:
            latest[kind] = study
    return list(latest.values())


def _interval(value: float, ci, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    if not isinstance(ci, (list, tuple)):  # one seed's test against another's: no interval
        return f"{value:.{digits}f}"
    low, high = ci
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def trust_table(data: ReportData) -> Table:
    rows = []
    for study in _studies(data):
        for f in study["figures"]:
            rows.append({
                "dataset": f["dataset"], "method": f["method"], "preset": study["preset"],
                "backbone": study.get("backbone") or "-", "points": f["points"],
                "recipe": f["recipe"], "val_median": f["val_median"], "val_iqr": f["val_iqr"],
                **{k: f.get(k) for k in COLUMNS[8:17]}, "study": study["file"],
                "seeds": ",".join(str(x) for x in study.get("seeds") or ()) or "-",
                "shown": f["recipe"] in (COMBINED, ANOTHER_SEED, f["default_mix"],
                                         *study.get("mixes", [])),
                "default": f["recipe"] == f["default_mix"],
            })
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "shown", "default"])
    shown = frame[frame["shown"]] if not frame.empty else frame
    display = pd.DataFrame({
        "dataset": [PAPER_DATASETS.get(d, dataset_title(d)) for d in shown["dataset"]],
        "method": [method_label(m) for m in shown["method"]],
        "preset, backbone": [f"{p}, {b}" for p, b in zip(shown["preset"], shown["backbone"])],
        "points": shown["points"].astype(str),
        "seeds": shown["seeds"],
        "validation": [r + (" (default)" if d else "")
                       for r, d in zip(shown["recipe"], shown["default"])],
        "val median (IQR)": ["-" if m is None or math.isnan(m) else f"{m:.3f} ({q:.3f})"
                             for m, q in zip(shown["val_median"], shown["val_iqr"])],
        "tau-b [95 %]": [_interval(v, c, 2) for v, c in
                         zip(shown["kendall_tau_b"], shown["kendall_tau_b_ci"])],
        "Spearman [95 %]": [_interval(v, c, 2) for v, c in
                            zip(shown["spearman"], shown["spearman_ci"])],
        "regret [95 %]": [_interval(v, c, 1) for v, c in zip(shown["regret"], shown["regret_ci"])],
        "test-best in top 3": ["yes" if t else "no" for t in shown["test_best_in_top3"]],
        "default regret": ["-" if v is None or math.isnan(v) else f"{v:.1f}"
                           for v in shown["default_regret"]],
        "random regret": [f"{v:.1f}" for v in shown["random_regret"]],
    })
    notes = [] if not frame.empty else [
        "No agreement study stored yet: run `python bench.py agreement --suite mtd --methods "
        "patchcore --preset fast --grid-file GRID.toml`."]
    return Table("table_trust", "How far to trust the validation", frame.drop(columns="shown"),
                 display, CAPTION, None, notes)
