"""``compare``: two methods on the same test images, per dataset and category: both AUROCs,
the difference with a 95 % interval, and DeLong's p-value (``bench.report.comparison``)."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import csv_list, results_dir_option, verbose_flag
from bench.cli.tables import markdown_table, text_table
from bench.errors import BenchError


@click.command()
@click.option("--methods", required=True, callback=csv_list(),
              help="Two methods, comma-separated: the difference is the first minus the second.")
@results_dir_option
@click.option("--dataset", callback=csv_list(), help="Only these datasets (comma-separated).")
@click.option("--category", callback=csv_list(), help="Only these categories (comma-separated).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "markdown"]),
              default="table", show_default=True)
@verbose_flag
def compare(methods: list[str], results_dir: Path, dataset, category, fmt: str) -> None:
    """Both methods' AUROC (mean over the seeds both ran), their difference with a 95 %
    interval and DeLong's p-value, from the same test images."""
    import pandas as pd

    from bench.report.comparison import compare as compare_methods
    from bench.report.comparison import format_p
    from bench.report.data import ReportData
    from bench.store.results import ResultsStore

    if len(methods) != 2 or methods[0] == methods[1]:
        raise BenchError(f"--methods takes two different methods, got {','.join(methods)}; for "
                         "example --methods differnet,patchcore.")
    if not ResultsStore(results_dir).has_records():
        raise BenchError(f"no records under {results_dir}; run the methods first or pass "
                         "--results-dir.")
    table = compare_methods(ReportData.load(results_dir), *methods, dataset, category)
    if table.empty:
        raise BenchError(f"no table cell has finished records of both {methods[0]} and "
                         f"{methods[1]} in {results_dir}; run both on the same data.")
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
        return
    shown = table.assign(
        shots=table["shots"].map(lambda s: "all" if pd.isna(s) else str(int(s))),
        **{c: table[c].round(1) for c in ("auroc_a", "auroc_b", "diff", "ci_low", "ci_high")},
        p_value=table["p_value"].map(format_p),
    ).rename(columns={"auroc_a": f"{methods[0]} %", "auroc_b": f"{methods[1]} %",
                      "diff": "diff (pts)", "ci_low": "95% CI low", "ci_high": "95% CI high",
                      "p_value": "p (DeLong)"})
    shown = shown.drop(columns=["method_a", "method_b", "variant", "pooling"])
    click.echo(markdown_table(shown) if fmt == "markdown" else text_table(shown))
    click.echo(f"difference = {methods[0]} - {methods[1]}; {table['pooling'].iloc[0]} (the "
               "test images are the sample; see bench/report/comparison.py)")
