"""download, list and report: the commands around a run."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import click

from bench.cli.options import csv_list, folder, results_dir_option, verbose_flag

# "name: type = default  # comment", or a comment line of its own.
_FIELD_LINE = re.compile(r"^\s*(\w+)\s*:[^#]*?(?:#\s*(.*))?$")
_COMMENT_LINE = re.compile(r"^\s*#\s?(.*)$")


def _downloadable() -> list[str]:
    from bench.data import downloadable_datasets

    return downloadable_datasets()


@click.command()
@click.argument("dataset", type=click.Choice(_downloadable()))
@click.option("--root", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              callback=folder)
@click.option("--from", "source", help="A local archive or a URL to fetch instead of the official one.")
@click.option("--force", is_flag=True, help="Fetch and lay out again even if already verified.")
@verbose_flag
def download(dataset: str, root: Path, source: str | None, force: bool) -> None:
    """Download (or import with --from), verify and lay out MTD or MVTec AD."""
    from bench.data import download_dataset

    path = download_dataset(dataset, root, source, force=force)
    click.echo(f"{dataset} is ready under {path}")


def field_descriptions(config_cls: type) -> dict[str, str]:
    """Each field's comment in its class's source: the comment on its line, else the comment
    lines just above it (bench/config.py documents every paper hyperparameter that way)."""
    out: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            if comment := _COMMENT_LINE.match(line):
                above.append(comment.group(1).strip())
            elif field := _FIELD_LINE.match(line):
                out[field.group(1)] = (field.group(2) or " ".join(above)).strip()
                above = []
            else:
                above = []
    return out


def print_fields(method: str) -> None:
    """A method's config fields: name, type, paper default and what it is."""
    from bench.config import field_types, resolve_config, toml_literal, type_name
    from bench.methods import get_method

    spec = get_method(method)
    paper = (resolve_config(spec.config_cls, spec.presets, "paper", {})
             if "paper" in spec.presets else spec.config_cls())
    descriptions = field_descriptions(spec.config_cls)
    rows = [(name, type_name(annotation),
             "-" if getattr(paper, name) is None else toml_literal(getattr(paper, name)),
             descriptions.get(name, ""))
            for name, annotation in field_types(spec.config_cls).items()]
    widths = [max(len(r[i]) for r in [("field", "type", "paper default", ""), *rows]) for i in range(3)]
    click.echo(f"{method} config fields (override one with --set NAME=VALUE):")
    for row in [("field", "type", "paper default", "description"), *rows]:
        click.echo("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3])


@click.command(name="list")
@click.option("--fields", "fields_of", metavar="METHOD",
              help="List METHOD's config fields (what --set accepts) instead.")
@verbose_flag
def list_(fields_of: str | None) -> None:
    """List suites, methods, presets, backbones and datasets."""
    if fields_of:
        print_fields(fields_of)
        return
    from bench.config import KNOWN_PRESETS, applied_preset
    from bench.data import DATASETS
    from bench.features import BACKBONES
    from bench.methods import available_methods, get_method
    from bench.run.suites import available_suites, load_suite

    click.echo("suites:")
    for name in available_suites():
        click.echo(f"  {name:10s} {load_suite(name).description}")
    click.echo("methods:")
    for name in available_methods():
        spec = get_method(name)
        falls = [f"{p} -> {applied_preset(spec.presets, p)}" for p in KNOWN_PRESETS
                 if p not in spec.presets]
        presets = ", ".join(spec.presets) + (f" ({', '.join(falls)})" if falls else "")
        click.echo(f"  {name:10s} presets: {presets}" + (f"  ({spec.note})" if spec.note else ""))
    click.echo(f"backbones: {', '.join(BACKBONES)}")
    from bench.data.defects import RECIPES
    from bench.data.defects.mixes import DEFAULT_MIX, MIXES

    click.echo("defect recipes (--recipes; --validation synthetic uses the mix "
               f"{DEFAULT_MIX}): " + ", ".join(sorted(RECIPES)) + "; mixes: "
               + "; ".join(f"{m.name} = {' + '.join(m.recipes)}" for m in MIXES.values()))
    click.echo("datasets: " + ", ".join(
        name + (f" (split variants: {', '.join(spec.split_variants)})"
                if spec.has_split_variants else "") for name, spec in DATASETS.items()))
    click.echo("config fields of a method: python bench.py list --fields METHOD")


@click.command()
@results_dir_option
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              callback=folder, help="Folder for report.md, report.html, figures/ and tables/.")
@verbose_flag
def report(results_dir: Path, out: Path) -> None:
    """Render Tables 1-3 and Figures 5-8 beside the paper's, from the results store alone."""
    from bench.report import build_report
    from bench.store.results import ResultsStore

    if not ResultsStore(results_dir).has_records():
        click.echo(f"note: no records under {results_dir}; every cell will read 'not run'", err=True)
    result = build_report(results_dir, out)
    click.echo(f"wrote {result.markdown} and {result.html} ({len(result.tables)} tables, "
               f"{len(result.figures)} figures) in {result.seconds:.1f} s")


@click.command()
@results_dir_option
@click.option("--images", required=True, callback=csv_list(),
              help="Test images, comma-separated, as defect/file (or a bare file name).")
@click.option("--cell", help="Only this run (a cell id); default: every run with a stored map.")
@click.option("--out", type=click.Path(path_type=Path), default=None, callback=folder,
              help="Folder for the panels [default: <results-dir>/localize].")
@verbose_flag
def localize(results_dir: Path, images: list[str], cell: str | None, out: Path | None) -> None:
    """Figure 8 panels of chosen test images: image, map with colour bar, overlay with the
    ground-truth contour (from maps stored by run --localize)."""
    from bench.report.data import ReportData
    from bench.report.figures.panels import localization_panels
    from bench.store.results import ResultsStore

    out = out or ResultsStore(results_dir).localize_dir
    for path in localization_panels(ReportData.load(results_dir), images, out, cell):
        click.echo(str(path))
