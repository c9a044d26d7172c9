"""``results``: the tidy table, filtered, as text, CSV, Parquet, LaTeX or Markdown; the seed
summary beside the paper (``--format paper``); or a method x category table of mean AUROC
(``--pivot``)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from bench.cli.options import csv_list, output_file, results_dir_option, verbose_flag
from bench.cli.tables import latex_table, markdown_table, text_table
from bench.errors import BenchError

FORMATS = ["table", "csv", "parquet", "latex", "markdown", "paper"]
FILTERS = {"method": "--method", "dataset": "--dataset", "category": "--category"}


def select(frame: pd.DataFrame, wanted: dict[str, list[str] | None]) -> pd.DataFrame:
    """The rows whose method, dataset and category are among those asked for; a value no
    record has is named on stderr with the recorded ones (a typo, most likely)."""
    keep = pd.Series(True, index=frame.index)
    for column, values in wanted.items():
        if not values:
            continue
        recorded = sorted(frame[column].dropna().unique())
        unknown = [v for v in values if v not in recorded]
        if unknown:
            click.echo(f"note: no records with {FILTERS[column]} {', '.join(unknown)}; recorded: "
                       f"{', '.join(recorded) or 'none'}", err=True)
        keep &= frame[column].isin(values)
    return frame[keep]


def render(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":  # machine-readable: a missing value is an empty field
        return frame.to_csv(index=False)
    if frame.empty:
        return "no results yet\n"
    if fmt == "markdown":
        return markdown_table(frame) + "\n"
    if fmt == "latex":
        return latex_table(frame)
    return text_table(frame) + "\n"


@click.command()
@results_dir_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table/csv/parquet/latex/markdown: one row per cell (or the --pivot table); "
                   "paper: means over seeds beside the paper.")
@click.option("--method", callback=csv_list(), help="Only these methods (comma-separated).")
@click.option("--dataset", callback=csv_list(), help="Only these datasets (comma-separated).")
@click.option("--category", callback=csv_list(), help="Only these categories (comma-separated).")
@click.option("--pivot", is_flag=True,
              help="One row per method, one column per category: mean AUROC (%) over seeds.")
@click.option("--out", type=click.Path(path_type=Path), callback=output_file,
              help="Write to this file instead of printing (required for parquet).")
@verbose_flag
def results(results_dir: Path, fmt: str, method, dataset, category, pivot: bool,
            out: Path | None) -> None:
    """Print the tidy results table (one row per cell), or a summary over seeds (--pivot,
    --format paper), optionally filtered."""
    from bench.results import ResultsStore
    from bench.summary import auroc_pivot, with_paper

    if fmt == "parquet" and out is None:
        raise BenchError("--format parquet writes a binary file; add --out FILE, "
                         "e.g. --out results.parquet.")
    if pivot and fmt == "paper":
        raise BenchError("--pivot and --format paper are two different summaries; drop one "
                         "(--pivot works with table, csv, parquet, latex and markdown).")
    frame = select(ResultsStore(results_dir).load(),
                   {"method": method, "dataset": dataset, "category": category})
    if pivot:
        frame = auroc_pivot(frame)
    elif fmt == "paper":
        frame = with_paper(frame)
    if fmt == "parquet":
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
        click.echo(f"wrote {len(frame)} rows to {out}")
        return
    text = render(frame, fmt)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {len(frame)} rows to {out}")
