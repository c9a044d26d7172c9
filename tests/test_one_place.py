"""Each piece of knowledge in one place: the preset rule, split variants as a dataset's own,
string choices checked up front, saving through protocols (not base classes), and the store's
layout."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import TINY, invoke, one_line_error
from record_helpers import whole_result

from bench.config import applied_preset
from bench.data import load_split
from bench.data.synthetic import make_synthetic
from bench.deploy.models import can_save, load_model, predict
from bench.errors import BenchError
from bench.methods import build_detector
from bench.paper import method_label, paper_name
from bench.registry import METHODS, RunContext, register_method
from bench.run.runner import RunOptions, run_cells
from bench.run.suites import Suite, load_suite, plan, resolve_for_dataset
from bench.store.results import Record, ResultsStore


def test_a_preset_a_method_lacks_falls_back_by_one_rule_and_is_recorded(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["differnet", "geotrans", "knn"],
                  categories=["blobs"], preset="code", backbone="random")
    applied = {c.method: c.preset_applied for c in plan(suite, data_root=synthetic_root)}
    assert applied == {"differnet": "code", "geotrans": "code", "knn": "paper"}
    suite = Suite(name="t", dataset="synthetic", methods=["dsebm"], categories=["blobs"],
                  preset="cpu", overrides={"epochs": 1, "image_size": 32})
    store = ResultsStore(tmp_path)
    run_cells(plan(suite, data_root=synthetic_root), store)
    (record,) = store.records()
    assert (record.preset, record.preset_applied) == ("cpu", "fast") and record.reduced
    assert applied_preset({"paper": {}}, "tiny") == "paper"  # tiny -> fast -> paper
    with pytest.raises(BenchError, match="unknown preset 'fsat'"):
        plan(Suite(name="t", dataset="synthetic", methods=["knn"], preset="fsat"),
             data_root=synthetic_root)


def test_a_string_choice_typo_is_refused_before_any_cell(tmp_path):
    result = invoke("run", "--suite", "smoke", "--data-root", str(tmp_path / "nothing"),
                    "--results-dir", str(tmp_path / "r"), *TINY,
                    "--set", "extractor_engine=onxruntime")
    line = one_line_error(result)
    assert "extractor_engine" in line and "onnxruntime" in line
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "r").exists()


def test_split_variants_are_the_datasets_own(synthetic_root, tmp_path):
    with pytest.raises(BenchError, match="no split variant 'random'"):
        plan(Suite(name="t", dataset="synthetic", methods=["knn"], split_variant="random"),
             data_root=synthetic_root)
    (cell,) = plan(Suite(name="t", dataset="synthetic", methods=["knn"], categories=["blobs"]),
                   data_root=synthetic_root)
    assert cell.recorded_split_variant is None and "split-" not in cell.cell_id
    # --mtd-split stays as an alias of --split-variant.
    result = invoke("run", "--suite", "smoke", "--data-root", str(synthetic_root),
                    "--results-dir", str(tmp_path), *TINY, "--mtd-split", "random")
    assert "no split variant 'random'" in one_line_error(result)


def test_records_written_with_mtd_split_still_load(tmp_path):
    record = Record(cell_id="knn__mtd__x", status="ok", method="knn", dataset="mtd",
                    category="mtd", seed=0, shots=None, preset="fast", backbone="random",
                    variant=None, config={}, config_hash="abc", reduced=True, auroc=0.9,
                    **whole_result(0.9))
    store = ResultsStore(tmp_path)
    path = store.write(record)
    data = json.loads(path.read_text())
    data.pop("split_variant"), data.pop("preset_applied")
    path.write_text(json.dumps({**data, "mtd_split": "random"}))  # as a record of before
    assert store.record(record).split_variant == "random"
    assert store.load()["split_variant"].tolist() == ["random"]


@dataclass(frozen=True)
class MeanBrightnessConfig:
    offset: float = 0.0  # a field, so --set and config hashes have something to see


class MeanBrightness:
    """A plugin that subclasses nothing of the harness: the distance of an image's mean
    brightness from the training images'. Saved through the protocols alone."""

    def __init__(self, config, context):
        self.config, self.context = config, context

    def _brightness(self, samples) -> np.ndarray:
        from PIL import Image

        return np.array([np.asarray(Image.open(s.path).convert("L"), float).mean()
                         for s in samples])

    def fit(self, train):
        self.mean_ = float(self._brightness(train).mean())
        return self

    def score(self, test):
        return np.abs(self._brightness(test) - self.mean_) + self.config.offset

    def get_state(self) -> dict:
        return {"mean_": self.mean_}

    def set_state(self, state: dict) -> None:
        self.mean_ = state["mean_"]

    def scores_alone(self) -> bool:
        return True

    def score_new(self, samples, run_keys):
        return self.score(samples)


@pytest.fixture
def mean_brightness():
    """The plugin registered for one test only."""
    register_method("mean_brightness_test", config_cls=MeanBrightnessConfig,
                    presets={"paper": {}}, paper_name=None)(MeanBrightness)
    yield "mean_brightness_test"
    METHODS.pop("mean_brightness_test")


def test_a_method_that_subclasses_nothing_is_saved_and_predicts(synthetic_root, tmp_path,
                                                                mean_brightness):
    assert can_save(MeanBrightness(MeanBrightnessConfig(), None))
    suite = Suite(name="t", dataset="synthetic", methods=[mean_brightness],
                  categories=["blobs"])
    store = ResultsStore(tmp_path)
    run_cells(plan(suite, data_root=synthetic_root), store, RunOptions(save_models=True))
    (record,) = store.records()
    model_file = Path(record.info["model_file"])
    assert model_file == store.model_path(record.cell_id) and model_file.is_file()
    paths = [synthetic_root / "blobs" / "test" / name for name in record.test_files[:5]]
    table = predict(load_model(model_file), paths, show_progress=False)
    np.testing.assert_allclose(table["score"], record.scores[:5])
    assert isinstance(load_model(model_file).detector, MeanBrightness)


def test_the_store_answers_every_path_under_its_folder(tmp_path):
    store = ResultsStore(tmp_path)
    paths = [store.records_dir, store.lease_path(type("C", (), {"cell_id": "c"})),
             store.maps_path("c"), store.model_path("c"), store.checkpoint_path("c"),
             store.default_cache_dir, store.cache().images, store.cache().features,
             store.cache().validation, store.slurm_dir, store.localize_dir,
             store.selection().root]
    assert all(p.is_relative_to(tmp_path) for p in paths)
    assert len(set(paths)) == len(paths)
    assert store.cache(tmp_path / "elsewhere").features == tmp_path / "elsewhere" / "features"


@pytest.fixture(scope="module")
def two_small_categories(tmp_path_factory):
    """Two categories, 8 training and 4 + 2 test images each: the question is sameness."""
    root = make_synthetic(tmp_path_factory.mktemp("refit"), n_train=8, n_test_good=4,
                          n_test_defect=2, size=64)
    return {c: load_split("synthetic", c, root) for c in ("blobs", "stripes")}


# Smaller than the tiny preset where a method allows it: the question is sameness, not quality.
CHEAP = {"backbone": "random", "epochs": 2, "n_features": 16}
CHEAPER = {"geotrans": {"epochs": 1, "image_size": 16}, "adgan": {"image_size": 32,
                                                                  "search_steps": 2}}


@pytest.mark.parametrize("method", sorted(m for m in METHODS if METHODS[m].source is None))
def test_a_refit_on_other_data_scores_as_a_fresh_fit(method, two_small_categories):
    """Learned state is reset by every ``fit``: nothing of the first fit survives a second."""
    fields = {f.name for f in dataclasses.fields(METHODS[method].config_cls)}
    overrides = {k: v for k, v in {**CHEAP, **CHEAPER.get(method, {})}.items() if k in fields}
    config = resolve_for_dataset(method, "tiny", "synthetic", overrides)
    blobs, stripes = two_small_categories["blobs"], two_small_categories["stripes"]
    refitted = build_detector(method, config, RunContext(seed=0)).fit(blobs.train)
    refitted.score(blobs.test)  # what a run does: score, then fit again
    refitted.fit(stripes.train)
    fresh = build_detector(method, config, RunContext(seed=0)).fit(stripes.train)
    np.testing.assert_array_equal(refitted.score(stripes.test), fresh.score(stripes.test))


NEW_METHOD = '''
"""A method written by the test: the distance of an image's mean brightness from the training
images' mean (no backbone, nothing to train)."""

from dataclasses import dataclass

import numpy as np

from bench.registry import DetectorBase, register_method


@dataclass(frozen=True)
class BrightnessGapConfig:
    offset: float = 0.0  # a field, so --set and the config hash have one to see


@register_method("brightness_gap", config_cls=BrightnessGapConfig, presets={"paper": {}}, paper_name=None, family="today", label="Brightness gap")
class BrightnessGap(DetectorBase):
    def _brightness(self, samples):
        return np.array([self.images().load_float(s.path, 32).mean().item() for s in samples])

    def fit(self, train):
        self.reset()
        self.mean_ = float(self._brightness(train).mean())
        return self

    def score(self, test):
        return np.abs(self._brightness(test) - self.mean_) + self.config.offset
'''


def test_a_new_method_is_one_module_and_one_line(tmp_path, monkeypatch):
    """docs/architecture.md's "A method": one module with one registration line, and one line
    that makes it known. For a built-in method that line is ``import <module>`` in
    bench/methods.py; the test runs that very statement (``importlib.import_module``) instead
    of editing the file, with the module on ``sys.path`` from ``tmp_path``. Then the smoke suite
    runs it without naming it, because the suite names families and the method registers in
    ``today``, and its record and the report carry the label its registration gives."""
    (tmp_path / "brightness_gap_method.py").write_text(NEW_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("brightness_gap_method")  # the one line of bench/methods.py
    try:
        assert "brightness_gap" in load_suite("smoke").methods
        data = make_synthetic(tmp_path / "data", categories=("blobs",), n_train=8,
                              n_test_good=4, n_test_defect=2, size=64)
        # The smoke suite's families on a tiny subset (shortened further: the question is
        # which methods run, not how well).
        result = invoke("run", "--suite", "smoke", "--categories", "blobs", "--seeds", "0", *TINY,
                        "--set", "epochs=1", "--set", "n_features=16", "--set", "image_size=32",
                        "--data-root", str(data), "--results-dir", str(tmp_path / "r"))
        assert result.exit_code == 0, result.output
        records = {r.method: r for r in ResultsStore(tmp_path / "r").records()}
        assert set(records) == set(load_suite("smoke").methods)
        assert all(r.status == "ok" for r in records.values())
        assert records["brightness_gap"].info["method_label"] == "Brightness gap"
        assert records["patchcore"].info["method_label"] == "PatchCore"
        result = invoke("report", "--results-dir", str(tmp_path / "r"), "--out",
                        str(tmp_path / "report"))
        assert result.exit_code == 0, result.output
        report = (tmp_path / "report" / "report.md").read_text()
        today = report[report.index("## Today's methods on Synthetic defects"):]
        assert "| Brightness gap | blobs" in today
    finally:
        METHODS.pop("brightness_gap", None)
        sys.modules.pop("brightness_gap_method", None)


def test_a_label_lives_in_the_registration_and_the_old_lookup_agrees():
    """Records carry the registration's label; bench.paper's lookup, for records older than
    labels, names every built-in method the same way."""
    builtin = {n: s for n, s in METHODS.items() if s.cls.__module__.startswith(("bench.",
                                                                                "baselines."))}
    assert len(builtin) >= 10
    for name, spec in builtin.items():
        assert (method_label(name), paper_name(name)) == (spec.label, spec.paper_name), name
