"""The commands that run cells: run, fewshot, ablation. Each checks what it can before any
cell or data work (device and folders while parsing; --set names and types here), then plans,
checks and runs the cells (``bench.run.executors.execute_cells``)."""

from __future__ import annotations

import dataclasses
import sys

import click

from bench.cli.options import csv_list, executor_settings, parse_set, run_options, shots_value
from bench.cli.tables import text_table


def check_overrides(suite, set_values: dict) -> None:
    """Every --set and suite override names a field of a selected method, with a value of the
    field's type; checked before ``plan``, which may download a dataset."""
    from bench.config import check_override_types
    from bench.methods import get_method

    classes = {m: get_method(m).config_cls for m in suite.methods}
    check_override_types(classes, set_values, source="--set")
    from_file = {k: v for k, v in suite.general_overrides().items() if k not in set_values}
    check_override_types(classes, from_file, source=f"suite {suite.name} [overrides]")
    for method, values in suite.scoped_overrides().items():
        check_override_types({method: classes[method]}, values,
                             source=f"suite {suite.name} [overrides.{method}]")
    for name, values in suite.variants.items():
        check_override_types(classes, values, source=f"suite {suite.name} [variants.{name}]")


def with_options(suite, set_: tuple[str, ...], **fields):
    """The suite with the command's options applied (an option left out keeps the suite's
    value; ``--set`` values join its overrides), and the ``--set`` values, checked."""
    changes = {k: v for k, v in fields.items() if v is not None}
    set_values = parse_set(set_)
    if set_values:
        changes["overrides"] = {**suite.overrides, **set_values}
    suite = dataclasses.replace(suite, **changes)
    check_overrides(suite, set_values)
    return suite, set_values


def execute(suite, *, methods, categories, seeds, preset, backbone, data_root, results_dir,
            cache_dir, device, split_variant, set_, progress, localize=False, shots=None,
            validation=None, save_models=False, threshold_fpr=0.05, track=None,
            check_data=True, strict=False, **executor) -> None:
    from bench.cli.check import run_checks
    from bench.report.summary import with_paper
    from bench.run.executors import execute_cells
    from bench.run.runner import RunOptions
    from bench.run.suites import plan
    from bench.store.results import ResultsStore

    suite, _ = with_options(suite, set_, methods=methods, categories=categories, seeds=seeds,
                            preset=preset, backbone=backbone, split_variant=split_variant,
                            shots=shots, validation=validation)
    settings = executor_settings(suite.executor, executor)
    store = ResultsStore(results_dir)
    tracker = start_tracking(suite, track, store)  # a missing MLflow is said before any work
    cells = plan(suite, data_root=data_root)
    click.echo(f"suite {suite.name}: {len(cells)} cells, preset {suite.preset}, results in "
               f"{results_dir}, executor {settings.kind}")
    checks = (run_checks(cells, store, backbone=suite.backbone, device=device, progress=progress,
                         cache_dir=cache_dir, strict=strict) if check_data else {})
    run = RunOptions(device=device, progress=progress, localize=localize, cache_dir=cache_dir,
                     save_models=save_models, threshold_fpr=threshold_fpr,
                     data_checks={c: check["fingerprint"] for c, check in checks.items()})
    summary = execute_cells(cells, store, settings, run,
                            on_record=None if tracker is None else tracker.log_safely)
    if tracker is not None:  # cells recorded earlier, or by other executors' processes
        planned = {c.cell_id for c in cells}
        tracker.log_safely(*(r for r in store.records() if r.cell_id in planned))
        click.echo(tracker.summary())
    claimed = f", {len(summary.claimed)} left to other runners" if summary.claimed else ""
    click.echo(f"ran {len(summary.done)}, skipped {len(summary.skipped)} already recorded, "
               f"failed {len(summary.failed)}{claimed}")
    frame = store.load()
    mine = frame[frame["cell_id"].isin({c.cell_id for c in cells})]
    click.echo(text_table(with_paper(mine)))
    for record in summary.failed:
        click.echo(f"FAILED {record.cell_id} ({record.failure}): {record.error}", err=True)
    if summary.failed:
        sys.exit(1)


def start_tracking(suite, track: str | None, store):
    """The suite's tracker (``--track`` over its ``[tracking]`` table), or None."""
    from bench.run.tracking import make_tracker, tracking_options

    options = tracking_options(suite.tracking, track)
    if options is None:
        return None
    if options.experiment is None:
        options = dataclasses.replace(options, experiment=suite.name)
    return make_tracker(store, options)


@click.command()
@click.option("--suite", "suite_name", required=True, help="smoke, mtd, mvtec, folder, or a .toml path.")
@click.option("--shots", callback=csv_list(shots_value), help="Training-set sizes, e.g. 16 or all.")
@run_options
def run(suite_name: str, **options) -> None:
    """Train and evaluate every cell of a suite, skipping cells already recorded."""
    from bench.run.suites import load_suite

    execute(load_suite(suite_name), **options)


@click.command()
@click.option("--shots", required=True, callback=csv_list(shots_value),
              help="e.g. 16 or 2,4,8,16,32,64,all.")
@click.option("--runs", type=int, default=3, show_default=True,
              help="Random training subsets per shot count (seeds 0..runs-1).")
@click.option("--suite", "suite_name", default="mvtec", show_default=True)
@run_options
def fewshot(shots, runs: int, suite_name: str, seeds, **options) -> None:
    """Train on seeded random subsets of k training images (Fig. 7, Table 1 '16 shots').

    DifferNet only unless --methods says otherwise: the paper's few-shot results are DifferNet's.
    """
    from bench.run.suites import load_suite

    seeds = seeds or list(range(runs))
    options["methods"] = options.get("methods") or ["differnet"]
    execute(load_suite(suite_name), shots=shots, seeds=seeds, **options)


@click.command()
@click.option("--suite", "suite_name", default="ablation", show_default=True,
              help="The ablation suite (Table 3's configurations A-G), or a .toml path.")
@run_options
def ablation(suite_name: str, **options) -> None:
    """Table 3: DifferNet on MVTec AD under the ablation configurations A-G."""
    from bench.run.suites import load_suite

    execute(load_suite(suite_name), **options)


__all__ = ["ablation", "execute", "fewshot", "run"]
