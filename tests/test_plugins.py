"""A method from outside the repository: loaded by module path, checked with the Detector
protocol, recorded with its source, and never needed again to print results or the report."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.methods import get_method

REPO = Path(__file__).resolve().parents[1]
PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass

    import numpy as np

    from bench.registry import register_method


    @dataclass(frozen=True)
    class BrightnessConfig:
        """Scores an image by how far its mean brightness is from the training images'."""

        scale: float = 1.0


    @register_method("brightness", config_cls=BrightnessConfig,
                     presets={"paper": {}, "tiny": {}}, paper_name=None)
    class Brightness:
        def __init__(self, config, context):
            self.config, self.context = config, context

        def _mean(self, samples):
            from bench.data import load_image
            return np.array([np.asarray(load_image(s.path), np.float64).mean() for s in samples])

        def fit(self, train):
            self.mean_ = self._mean(train).mean()
            return self

        def score(self, test):
            return self.config.scale * np.abs(self._mean(test) - self.mean_)


    class NotRegistered:
        pass
''')


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_brightness.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def bench(*args: str, pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run([sys.executable, str(REPO / "bench.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_plugin_runs_and_its_store_reports_without_it(plugin_dir, synthetic_root, tmp_path):
    store = tmp_path / "store"
    ran = bench("run", "--suite", "smoke", "--methods", "my_brightness:Brightness,knn",
                "--categories", "blobs", "--preset", "tiny", "--backbone", "random",
                "--data-root", str(synthetic_root), "--results-dir", str(store), "--no-progress",
                pythonpath=[REPO, plugin_dir])
    assert ran.returncode == 0, ran.stderr[-2000:]
    # The plugin is not importable now: results and report read the records alone.
    shown = bench("results", "--results-dir", str(store), "--format", "csv", pythonpath=[REPO])
    assert shown.returncode == 0 and "my_brightness:Brightness" in shown.stdout, shown.stderr
    reported = bench("report", "--results-dir", str(store), "--out", str(tmp_path / "report"),
                     pythonpath=[REPO])
    assert reported.returncode == 0, reported.stderr[-2000:]
    assert "my_brightness:Brightness" in (tmp_path / "report" / "report.md").read_text()


def test_the_record_names_the_plugin_source(plugin_dir, synthetic_root, tmp_path):
    from bench.run.runner import run_cells
    from bench.run.suites import Suite, plan
    from bench.store.results import ResultsStore

    suite = Suite(name="t", dataset="synthetic", methods=["my_brightness:Brightness"],
                  categories=["blobs"], preset="tiny")
    (record,) = run_cells(plan(suite, data_root=synthetic_root), ResultsStore(tmp_path)).done
    assert record.method == "my_brightness:Brightness"
    assert record.info["method_source"] == {"path": "my_brightness:Brightness", "version": None}
    assert record.auroc is not None


def test_unloadable_or_unregistered_plugins_are_one_line_errors(plugin_dir):
    with pytest.raises(BenchError, match="PYTHONPATH"):
        get_method("no_such_module:Thing")
    with pytest.raises(BenchError, match="register_method"):
        get_method("my_brightness:NotRegistered")
