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
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import padded_input
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


def load_grid_file(path: Path) -> list[dict[str, Any]]:
    """A grid file: one ``[[points]]`` table per point, naming the fields it changes (an empty
    table: the preset as it is); ``name`` gives a point its name."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise BenchError(f"cannot read the grid file {path}: {err}; write one [[points]] table "
                         "per grid point.") from None
    points = data.get("points")
    if not isinstance(points, list) or not points:
        raise BenchError(f"the grid file {path} has no [[points]] tables; write one per grid "
                         "point (an empty one for the preset as it is).")
    return [dict(p) for p in points]


def point_name(point: dict[str, Any]) -> str:
    """A point's name, safe as part of a file name: ``name`` if given, else its changes
    (``stages=2-3+patch_size=5``), ``preset`` for none.

    >>> point_name({"stages": [2, 3], "coreset_fraction": 0.1})
    'stages=2-3+coreset_fraction=0.1'
    """
    if "name" in point:
        raw = str(point["name"])
    else:
        def shown(v: Any) -> str:
            return "-".join(map(shown, v)) if isinstance(v, list | tuple) else f"{v}"
        raw = "+".join(f"{k}={shown(v)}" for k, v in point.items()) or "preset"
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", raw)


def named_points(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each grid point by its ``point_name``, without its ``name`` field; names are unique."""
    named = {point_name(p): {k: v for k, v in p.items() if k != "name"} for p in points}
    if len(named) != len(points):
        raise BenchError("two grid points have the same name; give them distinct `name`s.")
    return named


def select(suite: Suite, grid: dict[str, list[Any]] | list[dict[str, Any]], results_dir: Path,
           *, data_root: Path | None = None, cache_dir: Path | None = None, device: str = "cpu",
           progress: bool = False) -> Selection:
    """Run the grid (``field -> values``, or a list of points as a grid file gives them) with
    the synthetic validation split; pick the point of best mean validation AUROC (over
    categories and seeds; the first one given wins a tie)."""
    variants = named_points(grid_points(grid) if isinstance(grid, dict) else grid)
    fields = list(dict.fromkeys(k for p in variants.values() for k in p))
    suite = dataclasses.replace(suite, variants=variants, validation="synthetic")
    cells = plan(suite, data_root=data_root)
    for cell in cells:  # a value chosen on padded images would be chosen on an artefact
        if padded := padded_input(cell.config):
            raise BenchError(f"select: point {cell.variant} of {cell.method}: {padded}")
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
    for name in fields:
        table.insert(table.columns.get_loc("cells"), name,
                     [variants[p].get(name, "-") for p in table["point"]])
    best = table.loc[table["mean"].idxmax(), "point"]
    chosen = variants[best]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    out = store.root / f"{suite.name}-{stamp}"
    per_cell.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".json").write_text(json.dumps({
        "suite": suite.name, "dataset": suite.dataset, "methods": suite.methods,
        "preset": suite.preset, "grid": grid, "points": variants, "chosen": chosen,
        "criterion": "mean validation AUROC (synthetic defects on held-out training normals)",
        "test_set_scored": False, "table": table.to_dict(orient="records"),
    }, indent=1, default=str))
    return Selection(table, per_cell, chosen, out.with_suffix(".csv"), out.with_suffix(".json"))
