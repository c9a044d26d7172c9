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
@click.option("--to", "to", type=click.Choice(["mlflow"]),
              help="Log the (filtered) records as runs of an experiment tracker instead of "
                   "printing them; records logged before are not logged twice.")
@click.option("--experiment", help="With --to: the experiment's name [default: each record's "
                                   "suite, or its dataset for records that do not name one].")
@verbose_flag
def results(results_dir: Path, fmt: str, method, dataset, category, pivot: bool,
            out: Path | None, to: str | None, experiment: str | None) -> None:
    """Print the tidy results table (one row per cell), or a summary over seeds (--pivot,
    --format paper), optionally filtered; or log the records to MLflow (--to mlflow)."""
    from bench.report.summary import auroc_pivot, with_paper
    from bench.store.results import ResultsStore

    if to is not None:
        track(ResultsStore(results_dir), to, experiment,
              {"method": method, "dataset": dataset, "category": category})
        return
    if experiment is not None:
        raise BenchError("--experiment names where --to logs; add --to mlflow, or drop it.")

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


def track(store, backend: str, experiment: str | None, wanted: dict) -> None:
    """``results --to``: the store's records (filtered as the table would be) as tracker runs."""
    from bench.run.tracking import TrackingOptions, make_tracker

    tracker = make_tracker(store, TrackingOptions(backend=backend, experiment=experiment),
                           server_down_ok=False)
    records = store.records()
    keep = set(select(store.load(records), wanted)["cell_id"])
    try:
        tracker.log_all(r for r in records if r.cell_id in keep)
    except Exception as err:  # the server, not the store: one line, and nothing is lost
        raise BenchError(f"could not log to MLflow at {tracker.uri} ({type(err).__name__}); "
                         f"{tracker.added} runs were added; check the server and run the same "
                         "command again to add the rest.") from None
    click.echo(tracker.summary())
