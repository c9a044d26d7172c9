"""The paper's own numbers (Tables 1-3), package data under ``bench/paper_tables/`` (read with
``importlib.resources``, so an installed wheel has them too)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

PAPER_TABLES = "paper_tables"  # the package folder holding the CSV files
# The datasets the paper reports on (our dataset names) and how the paper calls them.
MVTEC, MTD = "mvtec", "mtd"
PAPER_DATASETS = {MVTEC: "MVTec AD", MTD: "MTD"}
# Our method names -> the paper's column names in Tables 1 and 2. Static, so tables can be
# built from records without importing a method (tests check it agrees with the registry).
PAPER_COLUMNS = {
    "geotrans": "GeoTrans", "ganomaly": "GANomaly", "dsebm": "DSEBM", "adgan": "ADGAN",
    "ocsvm": "OCSVM", "knn": "1-NN", "differnet": "DifferNet",
}


def paper_name(method: str) -> str | None:
    """The paper's column for ``method``, or None for a method the paper did not run."""
    return PAPER_COLUMNS.get(method)


# How their own papers spell the methods the DifferNet paper did not run. A method's label lives
# in its registration (``register_method(label=...)``) and every record carries it
# (``info["method_label"]``, read by ``bench.report.data.ReportData.label``); this lookup names
# the methods of records older than that (tests check it agrees with the registrations).
OTHER_LABELS = {"patchcore": "PatchCore", "padim": "PaDiM", "csflow": "CS-Flow"}


def method_label(method: str) -> str:
    """How tables name a method whose records carry no label: the paper's name where it has one.

    >>> method_label("knn"), method_label("csflow"), method_label("mine")
    ('1-NN', 'CS-Flow', 'mine')
    """
    return PAPER_COLUMNS.get(method, OTHER_LABELS.get(method, method))


# The methods that replaced the paper's (PatchCore, PaDiM, CS-Flow): their papers' own numbers,
# with the backbone and setting behind each and whether the transcription was checked.
PUBLISHED_TODAY = "published_today.csv"


def published_today() -> pd.DataFrame:
    """method, dataset, category ("mean" for a paper's own mean), image_auroc, pixel_auroc,
    pro (in %, NaN where not published), backbone, setting, source, checked."""
    return paper_table(PUBLISHED_TODAY)


@cache
def paper_table(name: str) -> pd.DataFrame:
    with (resources.files("bench") / PAPER_TABLES / name).open("rb") as fh:
        return pd.read_csv(fh)


def paper_auroc(dataset: str, category: str, paper_name: str | None, shots: int | None) -> float | None:
    """The paper's AUROC (in %) for a cell, or None where the paper has no such number."""
    if paper_name is None:
        return None
    if dataset == MTD and shots is None:
        table = paper_table("table2_mtd_auroc.csv").set_index("method")["auroc"]
        return float(table[paper_name]) if paper_name in table else None
    if dataset == MVTEC:
        column = paper_name
        if shots is not None:
            if paper_name != "DifferNet" or shots != 16:
                return None
            column = "DifferNet (16 shots)"
        table = paper_table("table1_mvtec_auroc.csv").set_index("category")
        if column in table.columns and category in table.index:
            return float(table.loc[category, column])
    return None
