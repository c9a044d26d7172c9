"""A study of the validation itself: does the synthetic validation rank configurations as the
real defects of the test set do?

``agreement`` runs every point of a grid once with the synthetic validation split: each is
fitted on the training images not held out, scored on the validation images of every recipe
asked for (the default mix's, and each further recipe's defective copies of the held-out
images) and on the test set. Records go to the results folder's study place
(``ResultsStore.agreement()``, never read by the main tables), each with its point's name as
``variant``, ``val_auroc`` for the default mix, ``info["val_aurocs"]`` for the other recipes and
the test ``scores``, ``labels`` and ``auroc``. The figures (``bench.report.trust``) are computed
per method x dataset x recipe and written as one JSON under ``studies/``; with two or more seeds,
also one seed's test against another's (how far the test itself repeats).

The test labels are read here by design: this measures the validation, it chooses nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import config_hash
from bench.data.defects.mixes import MIXES
from bench.data.validation import validation_mix
from bench.report.trust import BOOTSTRAP, Unit, point_table, seed_figures, study_figures
from bench.run.cells import preflight
from bench.run.runner import RunOptions, run_cells
from bench.run.selection import named_points
from bench.run.suites import Suite, plan
from bench.store.results import Record, ResultsStore


def study_recipes() -> list[str]:
    """What a study scores beside the default mix when ``--recipes`` is not given: the other
    mixes (none while v1 is the only one). Single recipes are asked for by name: each adds a
    defective copy of every held-out image to score at every point."""
    return list(MIXES)


@dataclass
class Study:
    points: list[dict]  # per method x dataset: point, test AUROC, validation AUROC per recipe
    figures: list[dict]  # per method x dataset x recipe
    json: Path
    failed: list[str]


def agreement(suite: Suite, points: list[dict[str, Any]], results_dir: Path, *,
              recipes: list[str], data_root: Path | None = None, cache_dir: Path | None = None,
              device: str = "cpu", progress: bool = False, bootstrap: int = BOOTSTRAP,
              grid_label: str = "") -> Study:
    """Run the grid with validation and test, and measure how the two rank the points."""
    named = named_points(points)
    suite = dataclasses.replace(suite, variants=named, validation=suite.validation or "synthetic")
    cells = plan(suite, data_root=data_root)
    default_mix = validation_mix(cells[0].validation)
    recipes = [r for r in dict.fromkeys(recipes) if r != default_mix]
    preflight(cells)
    results = ResultsStore(results_dir)
    store = results.agreement()
    for cell in cells:  # a point recorded with fewer recipes is run again, its record kept aside
        old = store.record(cell)
        if old is not None and set(recipes) - set(old.info.get("val_aurocs", {})):
            store.set_aside(cell, "fewer-recipes")
    summary = run_cells(cells, store, RunOptions(device=device, progress=progress,
                                                 cache_dir=results.cache(cache_dir).root,
                                                 recipes=tuple(recipes)))
    failed = [f"{r.cell_id}: {r.error}" for r in summary.failed]
    defaults = {(c.method, c.dataset): config_hash(c.config)
                for c in plan(dataclasses.replace(suite, variants={}), data_root=data_root)}
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for cell in cells:
        record = store.record(cell)
        if record is not None and record.status == "ok":
            groups[(cell.method, cell.dataset)].append((cell, record))
    table, figures = [], []
    for (method, dataset), pairs in groups.items():
        names = list(dict.fromkeys(c.variant for c, _ in pairs))
        units = study_units(pairs, names, [default_mix, *recipes])
        if units is None:  # said, not silently dropped
            failed.append(f"{method} on {dataset}: not every category x seed has a record of "
                          "every grid point, so it has no figures; run the command again")
            continue
        default = next((names.index(c.variant) for c, _ in pairs
                        if config_hash(c.config) == defaults.get((method, dataset))), None)
        where = {"method": method, "dataset": dataset}
        table += [{**where, **row} for row in point_table(units, [default_mix, *recipes], names)]
        singles = [r for r in recipes if r not in MIXES]
        rows = study_figures(units, [default_mix, *recipes], singles, default, bootstrap)
        repeat = seed_figures(seed_tests(pairs, names), default)
        for row in rows + ([repeat] if repeat else []):
            figures.append({**where, "default_mix": default_mix, **row})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    out = store.studies_dir / f"{suite.name}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "suite": suite.name, "dataset": suite.dataset, "methods": suite.methods,
        "preset": suite.preset, "backbone": suite.backbone, "seeds": suite.seeds,
        "categories": sorted({c.category for c in cells}), "grid": grid_label,
        "points": named, "default_mix": default_mix, "recipes": recipes,
        "cell_ids": [c.cell_id for c in cells],  # the records behind the figures, exactly
        "mixes": [m for m in [default_mix, *recipes] if m in MIXES],
        "bootstrap": bootstrap, "written_at": stamp, "failed": failed,
        "note": "test labels read to measure the validation; nothing is chosen here",
        "table": table, "figures": figures,
    }, indent=1, default=_plain))
    return Study(table, figures, out, failed)


def study_units(pairs: list[tuple[Any, Record]], names: list[str], recipes: list[str]
                ) -> list[Unit] | None:
    """The records of one method x dataset as ``Unit``s (one per category x seed), every point
    on the same images; None when some unit lacks a point."""
    by_unit: dict[tuple, dict[str, Record]] = defaultdict(dict)
    for cell, record in pairs:
        by_unit[(cell.category, cell.seed)][cell.variant] = record
    units = []
    for records in by_unit.values():
        if set(records) != set(names):
            return None
        rows = [records[n] for n in names]
        n = rows[0].info["validation"]["n_normal"]
        val = [np.asarray(r.val_scores) for r in rows]
        defects = {recipes[0]: np.array([v[n:] for v in val])}
        for spec in recipes[1:]:
            defects[spec] = np.array([r.info["val_recipe_scores"][spec] for r in rows])
        units.append(Unit(np.array([r.scores for r in rows]), np.asarray(rows[0].labels),
                          np.array([v[:n] for v in val]), defects))
    return units


def seed_tests(pairs: list[tuple[Any, Record]], names: list[str]) -> dict[int, np.ndarray]:
    """Per seed, each point's test AUROC (the mean over categories), in the order of ``names``."""
    by_seed: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cell, record in pairs:
        by_seed[cell.seed][cell.variant].append(record.auroc)
    return {seed: np.array([np.mean(points[n]) for n in names])
            for seed, points in by_seed.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)
