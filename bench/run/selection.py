"""Honest model selection: choose config values by validation AUROC, never by the test set.

``select`` runs every point of a grid of config values (``--grid field=v1,v2``) as a suite
variant with the synthetic validation split (bench/data/validation.py): the model trains on the
training images that are not held out and is scored on the held-out normals and their synthetic
defects. The test set is never scored. Records go to ``<results-dir>/selection/`` (apart from
the results the report reads), and a CSV and a JSON of what was seen are written beside them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError
from bench.run.cells import preflight
from bench.run.runner import RunOptions, run_cells
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore


@dataclass
class Selection:
    table: pd.DataFrame  # one row per grid point: values, seeds, cells, mean/std validation AUROC
    per_cell: pd.DataFrame  # one row per cell: grid point, category, seed, validation AUROC
    chosen: dict[str, Any]
    csv: Path
    json: Path


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, in the order the values were given."""
    if not grid:
        raise BenchError("select needs at least one --grid field=v1,v2.")
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def point_name(point: dict[str, Any]) -> str:
    return "+".join(f"{k}={v}" for k, v in point.items())


def select(suite: Suite, grid: dict[str, list[Any]], results_dir: Path, *,
           data_root: Path | None = None, cache_dir: Path | None = None, device: str = "cpu",
           progress: bool = False) -> Selection:
    """Run the grid with the synthetic validation split; pick the point of best mean
    validation AUROC (over categories and seeds; the first one given wins a tie)."""
    points = grid_points(grid)
    variants = {point_name(p): p for p in points}
    suite = dataclasses.replace(suite, variants=variants, validation="synthetic")
    cells = plan(suite, data_root=data_root)
    preflight(cells, check_test=False)
    results = ResultsStore(results_dir)
    store = results.selection()
    summary = run_cells(cells, store, RunOptions(device=device, progress=progress,
                                                 cache_dir=results.cache(cache_dir).root,
                                                 evaluate_test=False))
    if summary.failed:
        raise BenchError(f"{len(summary.failed)} selection cell(s) failed (first: "
                         f"{summary.failed[0].error}); see {store.root}.")
    records = {r.cell_id: r for r in store.records()}
    rows = []
    for cell in cells:
        record = records[cell.cell_id]
        if record.auroc is not None or record.scores:  # never expected: select scores no test
            raise BenchError(f"{record.cell_id} holds test scores; selection must not.")
        rows.append({"point": cell.variant, "category": cell.category, "method": cell.method,
                     "seed": cell.seed, "val_auroc": record.val_auroc, "cell_id": cell.cell_id})
    per_cell = pd.DataFrame(rows)
    table = (per_cell.groupby("point", sort=False)["val_auroc"]
             .agg(cells="count", mean="mean", std="std").reset_index())
    for name in grid:
        table.insert(table.columns.get_loc("cells"), name,
                     [dict(zip(variants, points))[p][name] for p in table["point"]])
    best = table.loc[table["mean"].idxmax(), "point"]
    chosen = dict(zip(variants, points))[best]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    out = store.root / f"{suite.name}-{stamp}"
    per_cell.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".json").write_text(json.dumps({
        "suite": suite.name, "dataset": suite.dataset, "methods": suite.methods,
        "preset": suite.preset, "grid": grid, "chosen": chosen,
        "criterion": "mean validation AUROC (synthetic defects on held-out training normals)",
        "test_set_scored": False, "table": table.to_dict(orient="records"),
    }, indent=1, default=str))
    return Selection(table, per_cell, chosen, out.with_suffix(".csv"), out.with_suffix(".json"))
