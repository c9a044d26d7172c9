"""Same seed, same data, same machine: the same scores for every method, also when the two
runs are separate processes (nothing depends on global state, hash seeds or process order)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.data.synthetic import make_synthetic
from bench.methods import available_methods
from bench.registry import METHODS
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]


def test_every_method_scores_identically_in_two_processes(tmp_path):
    # Small data and two epochs: the question is sameness, not quality.
    root = make_synthetic(tmp_path / "data", categories=("blobs",), n_train=8, n_test_good=4,
                          n_test_defect=2, size=64)
    methods = [m for m in available_methods() if m in METHODS and METHODS[m].source is None]
    stores = [tmp_path / "first", tmp_path / "second"]
    children = []
    for i, store in enumerate(stores):
        # One thread each: the two children share the machine's cores without oversubscribing.
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": str(i),
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        children.append(subprocess.Popen(
            [sys.executable, str(REPO / "bench.py"), "run", "--suite", "smoke", "--methods",
             ",".join(methods), "--categories", "blobs", "--seeds", "0", "--preset", "tiny",
             "--backbone", "random", "--set", "epochs=2", "--data-root", str(root), "--results-dir",
             str(store), "--no-progress"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True))
    for child in children:
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err[-2000:]
    first, second = ({r.method: r.scores for r in ResultsStore(s).records()} for s in stores)
    assert sorted(first) == sorted(methods)
    for method in methods:
        assert first[method] == second[method], method
