"""Two detectors compared on the same test images: both AUROCs, their difference with a 95 %
interval and the p-value of DeLong's test for correlated ROC curves (``bench.metrics.delong``).

Per dataset, category and training-set size, each method's configuration is the one the report
shows (``ReportData.select``: closest to its paper's); the seeds both methods ran are used.

Pooling over seeds: when every seed scored the same test images (MTD's and MVTec AD's fixed
test sets), each image's DeLong placement is averaged over a method's seeds, which makes the
compared AUROCs the seed means, and the test treats the images as the sample, so the interval
is the test set's sampling uncertainty of the seed-mean difference (the spread between seeds is
part of each method). When the seeds' test sets differ (a random split variant), every seed is
tested on its own images and the mean difference gets the mean of the seeds' standard errors
(conservative: it assumes the seeds' errors are fully correlated).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.metrics import delong, placements, two_sided_p
from bench.report.data import ReportData, ok_rows
from bench.store.results import Record

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
GROUP = ["dataset", "category", "shots", "variant"]
COLUMNS = [*GROUP, "method_a", "method_b", "auroc_a", "auroc_b", "diff", "ci_low", "ci_high",
           "p_value", "seeds", "n_test", "pooling", "config_a", "config_b"]


def _aligned(records: list[Record], names: list[str]) -> list[np.ndarray]:
    """Each record's scores in the order of ``names`` (test files)."""
    out = []
    for r in records:
        where = dict(zip(r.test_files, r.scores))
        out.append(np.array([where[n] for n in names], dtype=np.float64))
    return out


def compare_records(a: list[Record], b: list[Record]) -> dict | None:
    """The comparison of two methods' records of one table cell (None: nothing to pair)."""
    seeds = sorted({r.seed for r in a} & {r.seed for r in b})
    a = sorted((r for r in a if r.seed in seeds), key=lambda r: r.seed)
    b = sorted((r for r in b if r.seed in seeds), key=lambda r: r.seed)
    if not seeds:
        return None
    names = a[0].test_files
    same = all(sorted(r.test_files) == sorted(names) for r in a + b)
    if same:
        labels = np.array(a[0].labels)
        pa = [placements(labels, s) for s in _aligned(a, names)]
        pb = [placements(labels, s) for s in _aligned(b, names)]
        v10 = np.stack([np.mean([p[0] for p in pa], axis=0), np.mean([p[0] for p in pb], axis=0)])
        v01 = np.stack([np.mean([p[1] for p in pa], axis=0), np.mean([p[1] for p in pb], axis=0)])
        diff, se, p_value = delong(v10, v01)
        auroc_a, auroc_b = float(v10[0].mean()), float(v10[1].mean())
        pooling, n_test = "placements averaged over seeds", len(names)
    else:
        results, seeds = [], []
        for ra, rb in zip(a, b):
            if sorted(ra.test_files) != sorted(rb.test_files):
                continue
            seeds.append(ra.seed)
            labels = np.array(ra.labels)
            (sa,), (sb,) = _aligned([ra], ra.test_files), _aligned([rb], ra.test_files)
            (a10, a01), (b10, b01) = placements(labels, sa), placements(labels, sb)
            results.append((a10.mean(), b10.mean(), *delong(np.stack([a10, b10]),
                                                            np.stack([a01, b01]))))
        if not results:
            return None
        auroc_a, auroc_b, diff, se, _ = (float(np.mean(x)) for x in zip(*results))
        p_value = two_sided_p(diff, se)
        pooling, n_test = "seed by seed, mean standard error", len(a[0].test_files)
    return {"auroc_a": 100 * auroc_a, "auroc_b": 100 * auroc_b, "diff": 100 * diff,
            "ci_low": 100 * (diff - Z95 * se), "ci_high": 100 * (diff + Z95 * se),
            "p_value": p_value, "seeds": len(seeds), "n_test": n_test, "pooling": pooling}


def _config(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    backbone = first["backbone"] if isinstance(first["backbone"], str) else "-"
    return f"{first['preset']}, {backbone}"


def compare(data: ReportData, method_a: str, method_b: str, datasets: list[str] | None = None,
            categories: list[str] | None = None) -> pd.DataFrame:
    """One row per table cell both methods finished: AUROCs and difference (a - b) in %, its
    95 % interval, DeLong's p-value, seeds and test images behind it."""
    rows = ok_rows(data.select())
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    keep = rows["method"].isin([method_a, method_b])
    if datasets:
        keep &= rows["dataset"].isin(datasets)
    if categories:
        keep &= rows["category"].isin(categories)
    out = []
    for key, cell in rows[keep].groupby(GROUP, dropna=False, sort=True):
        ra, rb = cell[cell["method"] == method_a], cell[cell["method"] == method_b]
        if ra.empty or rb.empty:
            continue
        result = compare_records(data.records_of(ra), data.records_of(rb))
        if result is not None:
            out.append({**dict(zip(GROUP, key)), "method_a": method_a, "method_b": method_b,
                        **result, "config_a": _config(ra), "config_b": _config(rb)})
    return pd.DataFrame(out, columns=COLUMNS)


def best_other(data: ReportData, dataset: str, method: str) -> str | None:
    """The method other than ``method`` with the highest mean AUROC over the categories both
    finished on ``dataset`` (full training sets, no variant), or None."""
    rows = ok_rows(data.select(dataset=dataset, shots=None, variant=None))
    if rows.empty or method not in set(rows["method"]):
        return None
    mine = set(rows.loc[rows["method"] == method, "category"])
    means = {}
    for other, group in rows[rows["method"] != method].groupby("method"):
        shared = group[group["category"].isin(mine)]
        if not shared.empty:
            means[other] = shared.groupby("category")["auroc"].mean().mean()
    return max(means, key=means.get) if means else None


def format_p(p: float) -> str:
    if math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
