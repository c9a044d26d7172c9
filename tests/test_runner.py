"""The runner: cells, records, resume after a crash, failures recorded, the tidy table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.run.runner import run_cells
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
FAST = ["--methods", "differnet", "--preset", "tiny", "--backbone", "random", "--set", "epochs=2",
        "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_writes_one_record_per_cell_and_skips_them_next_time(synthetic_root, tmp_path):
    args = ["run", "--suite", "smoke", "--data-root", str(synthetic_root),
            "--results-dir", str(tmp_path), "--seeds", "0,1", *FAST]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "ran 4, skipped 0" in first.output
    second = invoke(*args)
    assert "ran 0, skipped 4" in second.output

    frame = ResultsStore(tmp_path).load()
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}
    assert {"method", "dataset", "category", "seed", "shots", "preset", "backbone", "auroc"} <= set(frame)
    assert frame["reduced"].all()  # the tiny preset with a random backbone is not the paper's

    csv = invoke("results", "--results-dir", str(tmp_path), "--format", "csv")
    table = pd.read_csv(pd.io.common.StringIO(csv.output))
    assert sorted(table["category"]) == ["blobs", "blobs", "stripes", "stripes"]
    assert table["auroc"].between(0, 1).all()


def test_record_holds_what_is_needed_to_trust_the_number(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["blobs"],
                  preset="tiny", backbone="random", overrides={"epochs": 2})
    store = ResultsStore(tmp_path)
    run_cells(plan(suite, data_root=synthetic_root), store)
    (path,) = (tmp_path / "records").glob("**/*.json")
    record = json.loads(path.read_text())
    assert record["config"]["epochs"] == 2 and record["config"]["backbone"] == "random"
    assert record["preset"] == "tiny" and record["departures"]["backbone"] == "random"
    assert len(record["scores"]) == len(record["labels"]) == record["n_test"] == 24
    assert record["n_train"] == 20 and len(record["train_files"]) == 20
    assert record["fit_s"] > 0 and record["peak_memory_mb"] > 0
    assert "torch" in record["versions"] and record["device"].startswith("cpu")


def test_fewshot_runs_draw_different_training_subsets(synthetic_root, tmp_path):
    result = invoke("fewshot", "--shots", "5", "--runs", "3", "--suite", "smoke",
                    "--categories", "blobs", "--data-root", str(synthetic_root),
                    "--results-dir", str(tmp_path), *FAST)
    assert result.exit_code == 0, result.output
    records = ResultsStore(tmp_path).records()
    subsets = {tuple(r.train_files) for r in records}
    assert len(records) == 3 and len(subsets) == 3
    assert all(len(r.train_files) == 5 and r.shots == 5 for r in records)


def test_fewshot_runs_differnet_unless_told_otherwise(synthetic_root, tmp_path):
    args = ["fewshot", "--shots", "5", "--runs", "1", "--suite", "smoke", "--categories", "blobs",
            "--data-root", str(synthetic_root), "--results-dir", str(tmp_path),
            "--preset", "tiny", "--backbone", "random", "--no-progress"]
    assert invoke(*args, "--set", "epochs=2").exit_code == 0
    assert {r.method for r in ResultsStore(tmp_path).records()} == {"differnet"}
    assert invoke(*args, "--methods", "knn").exit_code == 0
    assert {r.method for r in ResultsStore(tmp_path).records()} == {"differnet", "knn"}


def test_a_failing_cell_is_recorded_and_the_others_still_run(synthetic_root, tmp_path, monkeypatch):
    from bench.differnet import DifferNet

    original = DifferNet.fit

    def fit(self, train):
        if "stripes" in str(train[0].path):
            raise RuntimeError("boom")
        return original(self, train)

    monkeypatch.setattr(DifferNet, "fit", fit)
    result = CliRunner().invoke(cli, ["run", "--suite", "smoke", "--data-root", str(synthetic_root),
                                      "--results-dir", str(tmp_path), *FAST])
    assert result.exit_code == 1
    frame = ResultsStore(tmp_path).load().set_index("category")
    assert frame.loc["stripes", "status"] == "failed" and frame.loc["blobs", "status"] == "ok"
    (failed,) = [r for r in ResultsStore(tmp_path).records() if r.status == "failed"]
    assert "boom" in failed.error


def test_kill_9_then_rerun_finishes_only_what_was_missing(synthetic_root, tmp_path):
    """A real SIGKILL in the middle of a run; the second run must not redo finished cells."""
    cmd = [sys.executable, str(REPO / "bench.py"), "run", "--suite", "smoke",
           "--data-root", str(synthetic_root), "--results-dir", str(tmp_path),
           "--methods", "differnet", "--preset", "tiny", "--backbone", "random",
           "--set", "epochs=60", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "records"
    deadline = time.time() + 120
    while time.time() < deadline and not list(records.glob("**/*.json")):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in records.glob("**/*.json")}
    assert len(finished) == 1, "the first cell should have finished before the kill"
    assert not list(records.glob("**/*.tmp")), "no half-written record may remain"

    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "ran 1, skipped 1" in rerun.stdout
    assert {p.name for p in records.glob("**/*.json")} >= finished
    # A checkpoint being written at the kill leaves its temp file; finishing the cell removes it.
    assert not list((tmp_path / ".cache" / "checkpoints").glob("*")), "checkpoints outlive their cells"


def test_set_goes_to_the_methods_that_have_the_field_and_typos_fail(synthetic_root):
    from bench.errors import BenchError

    suite = Suite(name="t", dataset="synthetic", methods=["differnet", "knn"], categories=["blobs"],
                  preset="tiny", overrides={"epochs": 3})
    cells = {c.method: c for c in plan(suite, data_root=synthetic_root)}
    assert cells["differnet"].config.epochs == 3 and not hasattr(cells["knn"].config, "epochs")
    typo = Suite(name="t", dataset="synthetic", methods=["differnet", "knn"], categories=["blobs"],
                 preset="tiny", overrides={"epoch": 3})
    with pytest.raises(BenchError, match="unknown option"):
        plan(typo, data_root=synthetic_root)


@pytest.mark.parametrize("variant", ["A", "B"])
def test_suite_variants_become_separate_cells(synthetic_root, variant):
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["blobs"],
                  preset="tiny", variants={"A": {"n_test_transforms": 1}, "B": {"multi_scale": False}})
    cells = {c.variant: c for c in plan(suite, data_root=synthetic_root)}
    assert set(cells) == {"A", "B"} and cells["A"].cell_id != cells["B"].cell_id
    assert cells[variant].config.n_test_transforms == (1 if variant == "A" else 4)


def test_a_root_with_some_mvtec_categories_is_used_as_it_is(synthetic_root, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(synthetic_root / "blobs", tmp_path / "bottle")
    shutil.copytree(synthetic_root / "stripes", tmp_path / "carpet")

    def no_download(*_args, **_kwargs):
        raise AssertionError("nothing may be downloaded")

    monkeypatch.setattr("bench.data.catalog.download_dataset", no_download)
    suite = Suite(name="t", dataset="mvtec", methods=["differnet"], preset="tiny")
    cells = plan(suite, data_root=tmp_path)
    assert sorted(c.category for c in cells) == ["bottle", "carpet"]
