"""Frames as text for people: an aligned table, Markdown or LaTeX. A missing value prints as
"-" in all of them (never <NA>, None or nan); a float column keeps one decimal where that is
all it has (the % tables) and four otherwise."""

from __future__ import annotations

import math

import pandas as pd

MISSING = "-"


def _missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf")


def _decimals(values: list) -> int:
    """One decimal for a column that needs no more (the % tables), else four."""
    floats = [float(v) for v in values if _is_number(v) and not _missing(v)]
    return 1 if all(math.isclose(v, round(v, 1), abs_tol=1e-9) for v in floats) else 4


def display_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text: missing values as "-", floats of a column to the same decimals."""
    out = {}
    for column in frame.columns:
        values = frame[column].astype(object).tolist()
        is_float = pd.api.types.is_float_dtype(frame[column])
        places = _decimals(values) if is_float else None
        out[column] = [MISSING if _missing(v)
                       else f"{float(v):.{places}f}" if places is not None and _is_number(v)
                       else str(v) for v in values]
    return pd.DataFrame(out, columns=list(frame.columns), dtype=object)


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            for c in frame.columns]


def text_table(frame: pd.DataFrame) -> str:
    """An aligned plain-text table (no index)."""
    if frame.empty:
        return "no results yet"
    cells = display_cells(frame)
    with pd.option_context("display.width", 250, "display.max_columns", 50,
                           "display.max_rows", 100_000):
        return cells.to_string(index=False)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned."""
    cells = display_cells(frame)

    def row(values) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    rule = ["---:" if number else "---" for number in numeric_columns(frame)]
    lines = [row(cells.columns), row(rule), *(row(values) for values in cells.itertuples(index=False))]
    return "\n".join(lines)


def latex_table(frame: pd.DataFrame) -> str:
    """A booktabs ``tabular`` (LaTeX special characters escaped), numbers right-aligned."""
    align = "".join("r" if number else "l" for number in numeric_columns(frame))
    return display_cells(frame).to_latex(index=False, escape=True, column_format=align)
