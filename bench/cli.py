"""The command line: parse, call into ``bench``, print. Errors a user can fix print one line
and exit 2; failed cells make ``run`` exit 1 after the others have run."""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from pathlib import Path

import click
import pandas as pd

from bench.errors import BenchError


def _csv(kind=str):
    def parse(_ctx, _param, value):
        if value is None:
            return None
        try:
            return [kind(v.strip()) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list, got {value!r}") from None

    return parse


def _shots(value: str):
    return None if value == "all" else int(value)


def _set_options(values: tuple[str, ...]) -> dict:
    """--set key=value pairs, values parsed as TOML scalars/arrays (e.g. epochs=10)."""
    import tomllib

    out = {}
    for item in values:
        if "=" not in item:
            raise BenchError(f"--set expects key=value, got {item!r}; for example --set epochs=10.")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


def run_options(func):
    options = [
        click.option("--methods", callback=_csv(), help="Comma-separated method names."),
        click.option("--categories", callback=_csv(), help="Comma-separated categories."),
        click.option("--seeds", callback=_csv(int), help="Comma-separated seeds, e.g. 0,1,2."),
        click.option("--preset", help="paper (default), fast (2-core CPU), tiny (tests), code."),
        click.option("--backbone", help="alexnet (default), efficientnet_lite0 (offline), random."),
        click.option("--data-root", type=click.Path(path_type=Path), help="Folder of dataset categories."),
        click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"),
                     show_default=True),
        click.option("--cache-dir", type=click.Path(path_type=Path),
                     help="Decoded images and features shared between runs "
                          "[default: <results-dir>/.cache]."),
        click.option("--device", default="cpu", show_default=True, help="cpu or cuda."),
        click.option("--mtd-split", type=click.Choice(["authors", "random"]),
                     help="MTD: the authors' 761 training files, or a seeded random 80/20 split."),
        click.option("--set", "set_", multiple=True, help="Override a config field: --set epochs=10."),
        click.option("--progress/--no-progress", default=True, show_default=True),
        click.option("--localize", is_flag=True,
                     help="Also store localization maps of the test images (methods that have them)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BenchError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(verbose: bool) -> None:
    """differnet-bench: reproduce DifferNet (WACV 2021) and compare defect detectors."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("dataset", type=click.Choice(["mtd", "mvtec"]))
@click.option("--root", type=click.Path(path_type=Path), default=Path("data"), show_default=True)
@click.option("--from", "source", help="A local archive or a URL to fetch instead of the official one.")
@click.option("--force", is_flag=True, help="Fetch and lay out again even if already verified.")
@handle_errors
def download(dataset: str, root: Path, source: str | None, force: bool) -> None:
    """Download (or import with --from), verify and lay out MTD or MVTec AD."""
    from bench.data import download_dataset

    path = download_dataset(dataset, root, source, force=force)
    click.echo(f"{dataset} is ready under {path}")


def _execute(suite, *, methods, categories, seeds, preset, backbone, data_root, results_dir,
             cache_dir, device, mtd_split, set_, progress, localize=False, shots=None) -> None:
    from bench.results import ResultsStore
    from bench.runner import plan, preflight, run_cells
    from bench.summary import with_paper

    changes = {k: v for k, v in dict(methods=methods, categories=categories, seeds=seeds,
                                     preset=preset, backbone=backbone, mtd_split=mtd_split,
                                     shots=shots).items() if v is not None}
    if set_:
        changes["overrides"] = {**suite.overrides, **_set_options(set_)}
    suite = dataclasses.replace(suite, **changes)
    cells = plan(suite, data_root=data_root)
    preflight(cells)
    store = ResultsStore(results_dir)
    click.echo(f"suite {suite.name}: {len(cells)} cells, preset {suite.preset}, results in {results_dir}")
    summary = run_cells(cells, store, device=device, progress=progress, localize=localize,
                        cache_dir=cache_dir)
    click.echo(f"ran {len(summary.done)}, skipped {len(summary.skipped)} already recorded, "
               f"failed {len(summary.failed)}")
    frame = store.load()
    mine = frame[frame["cell_id"].isin({c.cell_id for c in cells})]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        click.echo(with_paper(mine).to_string(index=False))
    for record in summary.failed:
        click.echo(f"FAILED {record.cell_id}: {record.error}", err=True)
    if summary.failed:
        sys.exit(1)


@cli.command()
@click.option("--suite", "suite_name", required=True, help="smoke, mtd, mvtec, folder, or a .toml path.")
@click.option("--shots", callback=_csv(_shots), help="Training-set sizes, e.g. 16 or all.")
@run_options
@handle_errors
def run(suite_name: str, **options) -> None:
    """Train and evaluate every cell of a suite, skipping cells already recorded."""
    from bench.runner import load_suite

    _execute(load_suite(suite_name), **options)


@cli.command()
@click.option("--shots", required=True, callback=_csv(_shots), help="e.g. 16 or 2,4,8,16,32,64,all.")
@click.option("--runs", type=int, default=3, show_default=True,
              help="Random training subsets per shot count (seeds 0..runs-1).")
@click.option("--suite", "suite_name", default="mvtec", show_default=True)
@run_options
@handle_errors
def fewshot(shots, runs: int, suite_name: str, seeds, **options) -> None:
    """Train on seeded random subsets of k training images (Fig. 7, Table 1 '16 shots').

    DifferNet only unless --methods says otherwise: the paper's few-shot results are DifferNet's.
    """
    from bench.runner import load_suite

    seeds = seeds or list(range(runs))
    options["methods"] = options.get("methods") or ["differnet"]
    _execute(load_suite(suite_name), shots=shots, seeds=seeds, **options)


@cli.command()
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "paper"]), default="table",
              show_default=True, help="table/csv: one row per cell; paper: means beside the paper.")
@handle_errors
def results(results_dir: Path, fmt: str) -> None:
    """Print the tidy results table."""
    from bench.results import ResultsStore
    from bench.summary import with_paper

    frame = ResultsStore(results_dir).load()
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    if fmt == "paper":
        frame = with_paper(frame)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_rows", 500):
        click.echo(frame.to_string(index=False) if not frame.empty else "no results yet")


@cli.command(name="list")
@handle_errors
def list_() -> None:
    """List suites, methods, presets, backbones and datasets."""
    from bench.data import DATASETS
    from bench.features import BACKBONES
    from bench.methods import available_methods, get_method
    from bench.runner import available_suites, load_suite

    click.echo("suites:")
    for name in available_suites():
        click.echo(f"  {name:10s} {load_suite(name).description}")
    click.echo("methods:")
    for name in available_methods():
        spec = get_method(name)
        click.echo(f"  {name:10s} presets: {', '.join(spec.presets)}" + (f"  ({spec.note})" if spec.note else ""))
    click.echo(f"backbones: {', '.join(BACKBONES)}")
    click.echo(f"datasets: {', '.join(DATASETS)}")


@cli.command()
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for report.md, report.html, figures/ and tables/.")
@handle_errors
def report(results_dir: Path, out: Path) -> None:
    """Render Tables 1-3 and Figures 5-8 beside the paper's, from the results store alone."""
    from bench.report import build_report

    if not (results_dir / "records").is_dir():
        click.echo(f"note: no records under {results_dir}; every cell will read 'not run'", err=True)
    result = build_report(results_dir, out)
    click.echo(f"wrote {result.markdown} and {result.html} ({len(result.tables)} tables, "
               f"{len(result.figures)} figures) in {result.seconds:.1f} s")


@cli.command()
@click.option("--suite", "suite_name", default="ablation", show_default=True,
              help="The ablation suite (Table 3's configurations A-G), or a .toml path.")
@run_options
@handle_errors
def ablation(suite_name: str, **options) -> None:
    """Table 3: DifferNet on MVTec AD under the ablation configurations A-G."""
    from bench.runner import load_suite

    _execute(load_suite(suite_name), **options)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
