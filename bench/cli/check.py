"""``check``: know the data before training (``bench.run.datacheck``), per category a table and
its findings, with ``--json`` the findings as a list; and the same check as the first step of
``run`` (a summary of what it flagged; ``--strict`` stops before any cell on an error)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
import pandas as pd

from bench.cli.options import (
    csv_list,
    device,
    folder,
    output_file,
    results_dir_option,
    verbose_flag,
)
from bench.cli.tables import text_table
from bench.errors import BenchError

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
LINE = 300  # characters of a finding's detail in run's summary


def run_checks(cells: list, store, *, backbone: str | None, device: str, progress: bool,
               cache_dir: Path | None, strict: bool) -> dict[str, dict[str, Any]]:
    """The cells' data checks (from the store when made before), their errors and warnings
    said in a few lines; with ``strict``, an error stops here (exit 2, before any cell)."""
    from bench.errors import MissingWeightsError
    from bench.features import shared_backbone
    from bench.run.datacheck import DEFAULT_BACKBONE, CheckOptions, data_checks

    backbone = backbone or DEFAULT_BACKBONE
    try:
        shared_backbone(backbone)
    except MissingWeightsError as err:  # the cells that need it fail on their own, said there
        click.echo(f"note: the data check embeds with {DEFAULT_BACKBONE}, as {err}", err=True)
        backbone = DEFAULT_BACKBONE
    options = CheckOptions(backbone, device, progress)
    checks, reused = data_checks(cells, store, options, cache_dir)
    unique = _unique(checks)
    flagged = [f for c in unique for f in c["findings"] if f["severity"] != "info"]
    counts = _counts(flagged)
    click.echo(f"data check ({options.backbone} embeddings): {len(unique)} split(s), "
               f"{reused} from the store: {counts or 'nothing flagged'}")
    for finding in sorted(flagged, key=lambda f: SEVERITY_ORDER[f["severity"]]):
        click.echo(f"  {finding['severity']:7s} {_where(finding)}: {_short(finding['detail'])}")
    if flagged:
        click.echo("  details: python bench.py check with the same options, or "
                   + ", ".join(str(store.check_path(c["fingerprint"])) for c in unique
                               if any(f["severity"] != "info" for f in c["findings"])))
    if strict:
        stop_on_errors(flagged, "; fix the data, or run without --strict to run the cells anyway")
    return checks


def stop_on_errors(findings: list[dict[str, Any]], advice: str = "") -> None:
    """--strict: one line (exit 2) when any finding is an error."""
    errors = [f for f in findings if f["severity"] == "error"]
    if errors:
        raise BenchError(f"the data check found {_counts(errors)} "
                         f"({', '.join(sorted({_where(f) for f in errors}))}){advice}.")


def _unique(checks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return list({c["fingerprint"]: c for c in checks.values()}.values())


def _counts(findings: list[dict[str, Any]]) -> str:
    by = {s: sum(f["severity"] == s for f in findings) for s in ("error", "warning")}
    return ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in by.items() if n)


def _where(finding: dict[str, Any]) -> str:
    split = f" {finding['split']}" if finding["split"] else ""
    return f"{finding['category']} {finding['kind']}{split}"


def _short(text: str) -> str:
    return text if len(text) <= LINE else text[:LINE - 3] + "..."


def check_text(check: dict[str, Any]) -> str:
    """One check as people read it: a header, a row per folder, its findings."""
    variant = f", {check['split_variant']} split" if check.get("split_variant") else ""
    lines = [f"{check['dataset']}/{check['category']}{variant}: check {check['fingerprint']} "
             f"({check['backbone']} embeddings, {check['seconds']:.1f} s)"]
    if check["splits"]:
        lines.append(text_table(split_table(check)))
    for finding in sorted(check["findings"], key=lambda f: SEVERITY_ORDER[f["severity"]]):
        lines.append(f"  {finding['severity']:7s} {finding['kind']:14s} "
                     f"{finding['split'] or '-':10s} {finding['detail']}")
    return "\n".join(lines)


def split_table(check: dict[str, Any]) -> pd.DataFrame:
    """A row per folder: images, modes and channels, median size, median statistics, and for
    test folders the embedding test against the training set."""
    rows = []
    for row in check["splits"]:
        rows.append({
            "split": row["split"], "images": row["images"],
            "modes": ", ".join(f"{m} {n}" for m, n in row["modes"].items()),
            "channels": ", ".join(row.get("channels", {})),
            "size (median)": (f"{row['width'][1]} x {row['height'][1]}" if row.get("width")
                              else None),
            "brightness": _number(row.get("brightness"), ".3f"),
            "contrast": _number(row.get("contrast"), ".3f"),
            "sharpness": _number(row.get("sharpness"), ".3g"),
            "MMD p": _number(row.get("mmd_p"), ".3f" if (row.get("mmd_p") or 0) >= 0.01 else ".1e"),
            "classifier AUROC": _number(row.get("classifier_auroc"), ".2f"),
        })
    return pd.DataFrame(rows, dtype=object)


def _number(value: float | None, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def findings_json(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every finding, with the dataset and the check it belongs to."""
    return [{**f, "dataset": c["dataset"], "check": c["fingerprint"]}
            for c in checks for f in c["findings"]]


@click.command(name="check")
@click.option("--suite", "suite_name", required=True,
              help="smoke, mtd, mvtec, folder, or a .toml path: its dataset and categories.")
@click.option("--categories", callback=csv_list(), help="Comma-separated categories.")
@click.option("--seeds", callback=csv_list(int),
              help="Seeds, for a split drawn per seed (MTD's random split).")
@click.option("--backbone", help="The backbone whose embeddings the two-sample test compares "
                                 "[default: the suite's, else efficientnet_lite0].")
@click.option("--data-root", type=click.Path(path_type=Path), help="Folder of dataset categories.")
@click.option("--split-variant", "--mtd-split", "split_variant",
              help="How the dataset's train/test split is drawn (MTD: authors, random).")
@results_dir_option
@click.option("--cache-dir", type=click.Path(path_type=Path), callback=folder,
              help="Decoded images shared between runs [default: <results-dir>/.cache].")
@click.option("--device", default="cpu", show_default=True, callback=device)
@click.option("--json", "json_path", type=click.Path(path_type=Path), callback=output_file,
              help="Also write the findings to this file as a JSON list.")
@click.option("--strict", is_flag=True, help="Exit 2 when a finding is an error.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@verbose_flag
def check_command(suite_name: str, categories, seeds, backbone, data_root, split_variant,
                  results_dir: Path, cache_dir, device: str, json_path: Path | None,
                  strict: bool, progress: bool) -> None:
    """Check a suite's data before training: counts, image modes and sizes, exact and near
    copies (within a folder, and between training and test: leakage), test images unlike the
    training normals, masks. Stored per data fingerprint; run does the same first."""
    from bench.run.datacheck import DEFAULT_BACKBONE, CheckOptions, data_checks
    from bench.run.suites import load_suite, plan
    from bench.store.results import ResultsStore

    asked = {"categories": categories, "seeds": seeds, "backbone": backbone,
             "split_variant": split_variant}
    suite = dataclasses.replace(load_suite(suite_name),
                                **{k: v for k, v in asked.items() if v is not None})
    cells = plan(suite, data_root=data_root)
    options = CheckOptions(suite.backbone or DEFAULT_BACKBONE, device, progress)
    store = ResultsStore(results_dir)
    found, reused = data_checks(cells, store, options, cache_dir)
    checks = _unique(found)
    for check in checks:
        click.echo(check_text(check) + "\n")
    everything = [f for c in checks for f in c["findings"]]
    click.echo(f"checked {len(checks)} split(s) ({reused} from the store, "
               f"{store.checks_dir}): {_counts(everything) or 'nothing flagged'}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(findings_json(checks), indent=1, allow_nan=False))
        click.echo(f"wrote {len(everything)} findings to {json_path}")
    if strict:
        stop_on_errors(everything)
