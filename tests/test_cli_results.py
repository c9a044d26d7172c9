"""`results`: formats, filters and the method x category pivot, read from a store of known
records; a missing value prints as "-" in every text format."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from record_helpers import whole_result

from bench.cli import cli
from bench.store.results import Record, ResultsStore

UNREADABLE = ("<NA>", "None", "nan", "NaN")


def record(method: str, category: str, seed: int, auroc: float | None, dataset: str = "synthetic",
           preset: str = "tiny") -> Record:
    return Record(
        cell_id=f"{method}__{category}__shots-all__seed-{seed}__{preset}__{dataset}",
        status="ok" if auroc is not None else "failed", method=method, dataset=dataset,
        category=category, seed=seed, shots=None, preset=preset, backbone=None, variant=None,
        config={}, config_hash=f"hash-{method}-{preset}", reduced=True, auroc=auroc,
        error=None if auroc is not None else "RuntimeError: boom",
        **(whole_result(auroc) if auroc is not None else {}),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    results = ResultsStore(root)
    for r in [record("knn", "blobs", 0, 0.8), record("knn", "blobs", 1, 0.9),
              record("knn", "stripes", 0, None),  # failed: no AUROC
              record("differnet", "blobs", 0, 0.7), record("differnet", "stripes", 0, 0.6),
              record("differnet", "mtd", 0, 0.95, dataset="mtd")]:
        results.write(r)
    return root


def results(store: Path, *args: str):
    done = CliRunner().invoke(cli, ["results", "--results-dir", str(store), *args])
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "paper"])
def test_missing_values_print_as_a_dash(store, fmt):
    out = results(store, "--format", fmt)
    assert not any(word in out for word in UNREADABLE), out
    assert " - " in out or "| - |" in out or "& - " in out


def test_csv_filtered_by_method_dataset_and_category(store):
    table = pd.read_csv(io.StringIO(results(store, "--format", "csv", "--method", "knn,differnet",
                                            "--category", "blobs,mtd", "--dataset", "synthetic")))
    assert sorted(zip(table["method"], table["category"], table["seed"])) == [
        ("differnet", "blobs", 0), ("knn", "blobs", 0), ("knn", "blobs", 1)]


def test_a_filter_value_no_record_has_is_named(store):
    done = CliRunner().invoke(cli, ["results", "--results-dir", str(store), "--method", "knnn"])
    assert done.exit_code == 0
    assert "no records with --method knnn; recorded: differnet, knn" in done.output
    assert "no results yet" in done.output


def test_markdown_is_a_table_with_a_rule(store):
    lines = results(store, "--format", "markdown", "--method", "knn").splitlines()
    assert lines[0].startswith("| dataset | category | method |")
    assert set(lines[1].replace(" ", "").strip("|").split("|")) <= {"---", "---:"}
    assert len(lines) == 2 + 3 and all(line.count("|") == lines[0].count("|") for line in lines)


def test_latex_is_a_tabular(store):
    out = results(store, "--format", "latex", "--method", "differnet")
    assert out.startswith("\\begin{tabular}") and out.rstrip().endswith("\\end{tabular}")
    assert "config\\_hash" in out  # LaTeX specials escaped


def test_parquet_needs_out_and_round_trips(store, tmp_path):
    done = CliRunner().invoke(cli, ["results", "--results-dir", str(store), "--format", "parquet"])
    assert done.exit_code == 2 and done.output.strip().splitlines() == [
        "error: --format parquet writes a binary file; add --out FILE, e.g. --out results.parquet."]
    out = tmp_path / "all.parquet"
    assert "wrote 6 rows" in results(store, "--format", "parquet", "--out", str(out))
    back = pd.read_parquet(out)
    frame = ResultsStore(store).load()
    assert list(back.columns) == list(frame.columns) and len(back) == 6
    assert back.set_index("cell_id")["auroc"].sort_index().equals(
        frame.set_index("cell_id")["auroc"].sort_index())


def test_pivot_is_method_by_category_of_mean_auroc_over_seeds(store):
    table = pd.read_csv(io.StringIO(results(store, "--pivot", "--format", "csv")))
    table = table.set_index("method")
    assert list(table.index) == ["knn", "differnet"]  # the paper's column order
    assert list(table.columns) == ["blobs", "mtd", "stripes"]
    assert table.loc["knn", "blobs"] == 85.0  # mean of seeds 0 and 1, in %
    assert table.loc["differnet", "mtd"] == 95.0 and table.loc["differnet", "stripes"] == 60.0
    assert table.loc["knn", ["mtd", "stripes"]].isna().all()  # never run / failed


def test_pivot_as_text_shows_missing_cells_as_a_dash(store):
    lines = results(store, "--pivot").splitlines()
    assert lines[0].split() == ["method", "blobs", "mtd", "stripes"]
    assert lines[1].split() == ["knn", "85.0", "-", "-"]
    assert lines[2].split() == ["differnet", "70.0", "95.0", "60.0"]
    md = results(store, "--pivot", "--format", "markdown", "--category", "blobs").splitlines()
    assert md[2:] == ["| knn | 85.0 |", "| differnet | 70.0 |"]


def test_pivot_keeps_configurations_apart(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(record("knn", "blobs", 0, 0.8))
    store.write(record("knn", "blobs", 0, 0.6, preset="fast"))
    lines = results(tmp_path, "--pivot").splitlines()
    assert lines[0].split() == ["method", "preset", "blobs"]
    assert sorted(line.split() for line in lines[1:]) == [["knn", "fast", "60.0"],
                                                          ["knn", "tiny", "80.0"]]


def test_pivot_with_paper_format_is_refused(store):
    done = CliRunner().invoke(cli, ["results", "--results-dir", str(store), "--pivot",
                                    "--format", "paper"])
    assert done.exit_code == 2 and done.output.startswith("error: --pivot and --format paper")
