"""``verify``: check a results store (``bench.store.verify``); exit 0 when clean, 1 otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.cli.options import results_dir_option, verbose_flag
from bench.errors import BenchError


@click.command()
@results_dir_option
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False),
              help="Also check each record's data fingerprint against the files here now, and "
                   "its pixel metrics against its stored maps and the masks.")
@verbose_flag
def verify(results_dir: Path, data_root: Path | None) -> None:
    """Check a results store: every record readable, its AUROC recomputed from its scores, no
    cell recorded twice, no stale lease or temporary file (and, with --data-root, its data).
    One line per problem; exit 0 when clean, 1 otherwise."""
    from bench.run.cells import data_check
    from bench.store.results import ResultsStore
    from bench.store.verify import verify_store

    store = ResultsStore(results_dir)
    if not store.has_records():
        raise BenchError(f"{results_dir} holds no records (no {store.records_dir}); point "
                         "--results-dir at a results folder.")
    if data_root is not None and not data_root.is_dir():
        raise BenchError(f"--data-root {data_root} is not a folder; point it at the folder of "
                         "dataset categories the records were made on.")
    report = verify_store(store, None if data_root is None else data_check(data_root))
    for problem in report.problems:
        click.echo(problem)
    click.echo(report.summary(), err=not report.clean)
    sys.exit(0 if report.clean else 1)
