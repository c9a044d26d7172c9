"""The plugin is found through its entry point, runs in a suite and separates defects."""

from __future__ import annotations

from pathlib import Path

from bench.data.synthetic import make_synthetic
from bench.methods import available_methods, get_method
from bench.run.runner import run_cells
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore


def test_found_by_its_entry_point_name():
    assert "mahalanobis" in available_methods()
    spec = get_method("mahalanobis")
    assert spec.source == "differnet_bench_mahalanobis.detector:Mahalanobis"
    assert spec.version == "0.1.0"


def test_runs_in_a_suite_and_ranks_defects_higher(tmp_path: Path):
    root = make_synthetic(tmp_path / "data", n_train=20, n_test_good=8, n_test_defect=8, size=64)
    suite = Suite(name="t", dataset="synthetic", methods=["mahalanobis"], categories=["blobs"],
                  preset="tiny", backbone="random")
    (record,) = run_cells(plan(suite, data_root=root), ResultsStore(tmp_path / "r")).done
    assert record.info["method_source"]["path"].endswith("detector:Mahalanobis")
    assert record.auroc > 0.6  # a random backbone still separates the synthetic blobs
