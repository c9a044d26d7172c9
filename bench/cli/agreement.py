"""``agreement``: measure how far the synthetic validation ranks a grid as the test set does
(bench/run/agreement.py; the figures: bench/report/trust.py)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from bench.cli.options import csv_list, select_options
from bench.cli.run import with_options
from bench.cli.select import grid_of, grid_options
from bench.cli.tables import text_table
from bench.errors import BenchError


def _interval(row: dict, name: str, digits: int) -> str:
    if f"{name}_ci" not in row:  # a figure without an interval (one seed's test against another's)
        return f"{row[name]:.{digits}f}"
    low, high = row[f"{name}_ci"]
    return f"{row[name]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def figures_table(figures: list[dict]):
    """The study's figures as the command prints them."""
    import pandas as pd

    return pd.DataFrame([{
        "method": f["method"], "dataset": f["dataset"],
        "recipe": f["recipe"] + (" (default)" if f["recipe"] == f["default_mix"] else ""),
        "val median (IQR)": "-" if math.isnan(f["val_median"])
        else f"{f['val_median']:.3f} ({f['val_iqr']:.3f})",
        "tau-b [95 %]": _interval(f, "kendall_tau_b", 2),
        "spearman [95 %]": _interval(f, "spearman", 2),
        "regret [95 %]": _interval(f, "regret", 1),
        "best in top 3": "yes" if f["test_best_in_top3"] else "no",
        "default regret": "-" if math.isnan(f["default_regret"]) else f"{f['default_regret']:.1f}",
        "random regret": f"{f['random_regret']:.1f}",
    } for f in figures])


@click.command(name="agreement")
@grid_options
@click.option("--recipes", callback=csv_list(),
              help="Defect recipes and mixes to score beside the default mix, comma-separated "
                   "(name or name/param=low:high, or a mix: `list` shows them) "
                   "[default: the other mixes].")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples of the images for the intervals.")
@select_options
def agreement_command(suite_name: str, grid: tuple[str, ...], grid_file: Path | None, recipes,
                      bootstrap: int, *, methods, categories, seeds, preset, backbone, data_root,
                      results_dir, cache_dir, device, split_variant, set_, progress, localize,
                      validation) -> None:
    """Run every grid point once, scored on the synthetic validation (per recipe) and on the
    test set, and print how far the two agree: Kendall tau-b, Spearman, the selection regret,
    whether the test-best point is in the validation's top 3, and the regret of the default
    point and of a random pick. Records and the study go under <results-dir>/agreement/."""
    from bench.data.defects import parse_recipe
    from bench.data.defects.mixes import MIXES
    from bench.run.agreement import agreement, study_recipes
    from bench.run.selection import grid_points
    from bench.run.suites import load_suite

    if localize:
        raise BenchError("agreement never localizes; drop --localize.")
    suite, _ = with_options(load_suite(suite_name), set_, methods=methods,
                            categories=categories, seeds=seeds, preset=preset, backbone=backbone,
                            split_variant=split_variant, validation=validation)
    points = grid_of(suite, grid, grid_file, "agreement")
    points = grid_points(points) if isinstance(points, dict) else points
    recipes = recipes or study_recipes()
    for spec in recipes:
        if spec not in MIXES:
            parse_recipe(spec)  # a typo fails here, before any cell
    study = agreement(suite, points, results_dir, recipes=recipes, data_root=data_root,
                      cache_dir=cache_dir, device=device, progress=progress,
                      bootstrap=bootstrap, grid_label=str(grid_file or " ".join(grid)))
    if study.failed:
        click.echo(f"{len(study.failed)} point(s) or method(s) failed and are left out:", err=True)
        for line in study.failed:
            click.echo(f"  {line}", err=True)
    if not study.figures:
        raise BenchError("no method x dataset has every grid point recorded; see the failures "
                         "above.")
    import pandas as pd

    click.echo(text_table(pd.DataFrame(study.points)))
    click.echo(text_table(figures_table(study.figures)))
    click.echo(f"wrote {study.json} (test labels read to measure the validation; nothing chosen)")
