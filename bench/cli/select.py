"""``select``: choose reduced-preset values by validation AUROC only (bench/run/selection.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from bench.cli.options import parse_set, select_options
from bench.cli.run import check_overrides, with_options
from bench.cli.tables import text_table
from bench.errors import BenchError


def parse_grid(values: tuple[str, ...]) -> dict[str, list]:
    """--grid field=v1,v2 (values parsed as --set values are)."""
    grid: dict[str, list] = {}
    for item in values:
        if "=" not in item:
            raise BenchError(f"--grid expects field=v1,v2, got {item!r}; for example "
                             "--grid rotation_mode=uniform,right_angles.")
        name, raw = item.split("=", 1)
        grid[name.strip()] = [parse_set((f"{name}={v}",))[name.strip()] for v in raw.split(",")]
    return grid


def check_points(suite, points: list[dict]) -> list[dict]:
    """Each point of a grid file names fields of the suite's methods, with values of their
    types (checked before any cell)."""
    for point in points:
        changes = {k: v for k, v in point.items() if k != "name"}
        check_overrides(dataclasses.replace(suite, variants={"point": changes}), {})
    return points


def grid_options(func):
    """A suite and its grid: --grid (a product of values) or --grid-file (points)."""
    for option in reversed([
        click.option("--suite", "suite_name", required=True, help="A suite name or a .toml path."),
        click.option("--grid", multiple=True,
                     help="Values to compare: --grid field=v1,v2 (repeat for a product of fields)."),
        click.option("--grid-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help="Or a TOML file with one [[points]] table per point (the fields it "
                          "changes; an empty table: the preset as it is)."),
    ]):
        func = option(func)
    return func


def grid_of(suite, grid: tuple[str, ...], grid_file: Path | None, command: str):
    """The points of --grid-file (a list) or the values of --grid (field -> values), checked."""
    from bench.run.selection import load_grid_file

    if bool(grid) == bool(grid_file):
        raise BenchError(f"{command} needs the grid: either --grid field=v1,v2 or --grid-file "
                         "grid.toml (not both).")
    if grid_file:
        return check_points(suite, load_grid_file(grid_file))
    values = parse_grid(grid)
    for name, options in values.items():
        for value in options:
            check_overrides(dataclasses.replace(suite, overrides={name: value}), {name: value})
    return values


@click.command(name="select")
@grid_options
@select_options
def select_command(suite_name: str, grid: tuple[str, ...], grid_file: Path | None, *, methods,
                   categories, seeds, preset, backbone, data_root, results_dir, cache_dir,
                   device, split_variant, set_, progress, localize, validation) -> None:
    """Pick config values by validation AUROC on synthetic defects of held-out training
    images; the test set is never scored. Writes what it saw under <results-dir>/selection/."""
    from bench.run.selection import select
    from bench.run.suites import load_suite

    if localize or validation:
        raise BenchError("select always uses --validation synthetic and never localizes; drop "
                         "--localize/--validation.")
    suite, _ = with_options(load_suite(suite_name), set_, methods=methods,
                            categories=categories, seeds=seeds, preset=preset, backbone=backbone,
                            split_variant=split_variant)
    points = grid_of(suite, grid, grid_file, "select")
    result = select(suite, points, results_dir, data_root=data_root, cache_dir=cache_dir,
                    device=device, progress=progress)
    shown = result.table.drop(columns=["point"]).rename(
        columns={"mean": "val_auroc", "std": "val_std"})
    click.echo(text_table(shown))
    chosen = (", ".join(f"{k}={v}" for k, v in result.chosen.items())
              or "the preset as it is (no value changed)")
    click.echo(f"chosen by validation AUROC (test set never scored): {chosen}")
    click.echo(f"wrote {result.csv} and {result.json}")
