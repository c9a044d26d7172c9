"""What the report compares with besides the paper's tables (``bench.paper``): its reference
points quoted in the text, the measure behind one of them, and how the paper names our methods.
Tables and figures both read these."""

from __future__ import annotations

import math

import numpy as np

from bench.paper import PAPER_COLUMNS

# Sec. 4.3: "a recall of about 50 % without any false positive among 191 defect-free test images".
PAPER_MTD_RECALL_AT_0FP = 50.0
# Sec. 4.5 "Multimodality": all 15 categories as one class, 12 coupling blocks, "a mean AUROC of
# 90.2 %" (quoted in the text only, not in a table).
PAPER_MULTIMODAL_AUROC = 90.2


def paper_to_method() -> dict[str, str]:
    """The paper's method names (table columns) -> our method names."""
    return {column: method for method, column in PAPER_COLUMNS.items()}


DIFFERNET = paper_to_method()["DifferNet"]


def method_order(methods: list[str], paper_order: list[str] | None = None) -> list[str]:
    """``methods`` in the paper's column order, then the ones the paper did not run."""
    names = paper_to_method()
    paper_order = list(names) if paper_order is None else paper_order
    ordered = [names[p] for p in paper_order if names.get(p) in methods]
    return ordered + sorted(set(methods) - set(ordered))


def recall_at_zero_fp(labels, scores) -> float:
    """Fraction of defective images scored above every defect-free one, in % (Sec. 4.3)."""
    labels_a, scores_a = np.asarray(labels), np.asarray(scores, dtype=float)
    if not (labels_a == 0).any() or not (labels_a == 1).any():
        return math.nan
    return float(100 * (scores_a[labels_a == 1] > scores_a[labels_a == 0].max()).mean())
