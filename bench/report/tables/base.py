"""What every table builder returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report.provenance import Provenance


@dataclass
class Table:
    """``data`` holds the numbers (AUROC in %, one row per table cell, with the cell ids behind
    each number) and is what the tests compare with the results table; ``display`` is the same
    table as the report shows it (strings, "not run" where nothing was recorded)."""

    key: str  # file stem under tables/
    title: str
    data: pd.DataFrame  # the numbers, one row per table cell
    display: pd.DataFrame  # what the report shows
    caption: str
    provenance: Provenance | None = None
    notes: list[str] = field(default_factory=list)
    dataset: str = ""  # set for data the paper never used: the report shows these first
