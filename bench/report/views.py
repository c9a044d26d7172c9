"""A table's display frame as the templates draw it: header rows with column spans and body
rows with row spans (HTML), and one flat header and flat rows (Markdown, LaTeX).

The templates only loop over these; what a cell says and how "not run" and "failed" stand out
is decided here, once for every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import pandas as pd

from bench.report.data import FAILED, NOT_RUN

CSS_OF = {NOT_RUN: "missing", FAILED: "failed"}


@dataclass
class Span:
    text: str
    span: int = 1  # columns (header) or rows (row labels) the cell covers


@dataclass
class Row:
    labels: list[Span]  # row labels starting here (a label spanning rows appears once)
    cells: list[Span]
    css: list[str] = field(default_factory=list)  # per cell: "missing", "failed" or ""


@dataclass
class TableView:
    n_labels: int  # row-label columns (the index levels shown)
    header: list[list[Span]]  # one header row per column level
    rows: list[Row]
    flat_header: list[str]  # Markdown / LaTeX: label names, then the columns' joined names
    flat_rows: list[list[str]]


def text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def shows_index(frame: pd.DataFrame) -> bool:
    """A display frame's index is shown when it means something (named, or several levels)."""
    return isinstance(frame.index, pd.MultiIndex) or bool(frame.index.name)


def flat_columns(frame: pd.DataFrame) -> list[str]:
    if isinstance(frame.columns, pd.MultiIndex):
        return [" ".join(str(p) for p in c if p) for c in frame.columns]
    return [str(c) for c in frame.columns]


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The display frame with a meaningful index turned into leading columns."""
    if shows_index(frame):
        flat = frame.copy()
        flat.columns = flat_columns(frame)
        return flat.reset_index()
    return frame


def _header(frame: pd.DataFrame) -> list[list[Span]]:
    columns = list(frame.columns)
    if not isinstance(frame.columns, pd.MultiIndex):
        return [[Span(text(c)) for c in columns]]
    levels = frame.columns.nlevels
    rows = []
    for level in range(levels):
        if level == levels - 1:
            rows.append([Span(text(c[level])) for c in columns])
        else:  # an upper level spans the columns below it
            runs = groupby(columns, key=lambda c, n=level + 1: c[:n])
            rows.append([Span(text(key[-1]), len(list(run))) for key, run in runs])
    return rows


def _labels(frame: pd.DataFrame) -> list[list[Span]]:
    """Per row, the row labels that start there: an outer label spans its run of rows."""
    keys = [k if isinstance(k, tuple) else (k,) for k in frame.index]
    n = len(keys[0]) if keys else 0
    out: list[list[Span]] = [[] for _ in keys]
    for level in range(n):
        if level == n - 1:
            for i, key in enumerate(keys):
                out[i].append(Span(text(key[level])))
            continue
        start = 0
        for key, run in groupby(keys, key=lambda k, m=level + 1: k[:m]):
            size = len(list(run))
            out[start].append(Span(text(key[-1]), size))
            start += size
    return out


def table_view(frame: pd.DataFrame) -> TableView:
    index = shows_index(frame)
    labels = _labels(frame) if index else [[] for _ in range(len(frame))]
    rows = []
    for row_labels, values in zip(labels, frame.itertuples(index=False), strict=True):
        cells = [Span(text(v)) for v in values]
        rows.append(Row(row_labels, cells, [CSS_OF.get(c.text, "") for c in cells]))
    flat = flat_frame(frame)
    return TableView(
        frame.index.nlevels if index else 0,
        _header(frame),
        rows,
        [text(c) for c in flat_columns(flat)],
        [[text(v) for v in values] for values in flat.itertuples(index=False)],
    )
