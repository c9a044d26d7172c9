"""bench.py agreement: its figures checked against a hand computation, a small study end to end
(records apart from the main tables), and the per-stage cache that makes grids cheap."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import bench.features.maps as maps_module
from bench.report.trust import ANOTHER_SEED, COMBINED, Unit, aurocs, borda, figures, study_figures
from bench.run.agreement import agreement
from bench.run.runner import RunOptions, run_cell
from bench.run.selection import point_name
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore


def test_figures_match_a_hand_computation():
    """Five points; worked by hand: of the 10 pairs, 7 concordant, 2 discordant, 1 tied in the
    validation only, so tau-b = (7 - 2) / sqrt(10 * 9); Spearman from the ranks (5, 3.5, 3.5,
    1, 2) and (4, 5, 2, 1, 3): 6.5 / sqrt(9.5 * 10)."""
    val = np.array([0.9, 0.8, 0.8, 0.6, 0.7])
    test = np.array([0.70, 0.90, 0.60, 0.50, 0.65])
    f = figures(val, test, default=3)
    assert f["kendall_tau_b"] == pytest.approx(5 / np.sqrt(90))
    assert f["spearman"] == pytest.approx(6.5 / np.sqrt(95))
    assert f["regret"] == pytest.approx(20.0)  # point 0 chosen (0.70); point 1 is best (0.90)
    assert f["test_best_in_top3"]  # the top 3 by validation: points 0, 1, 2
    assert f["default_regret"] == pytest.approx(40.0)  # point 3: 0.50
    assert f["random_regret"] == pytest.approx(100 * (0.9 - 0.67))
    # Borda: ranks (5, 3.5, 3.5, 1, 2) + (1, 5, 3, 2, 4) = (6, 8.5, 6.5, 3, 6): point 1 chosen.
    combined = borda(np.array([val, [0.5, 0.9, 0.7, 0.6, 0.8]]))
    assert combined.tolist() == [6, 8.5, 6.5, 3, 6]
    assert figures(combined, test)["regret"] == 0


def test_aurocs_and_study_figures_agree_with_their_definitions():
    rng = np.random.default_rng(0)
    neg, pos = rng.integers(0, 5, (3, 20)).astype(float), rng.integers(2, 7, (3, 15)).astype(float)
    expected = [roc_auc_score([0] * 20 + [1] * 15, np.r_[n, p]) for n, p in zip(neg, pos)]
    assert np.allclose(aurocs(neg, pos), expected)
    labels = np.r_[np.zeros(20), np.ones(15)]
    unit = Unit(np.c_[neg, pos], labels, neg[:, :10], {"a": pos[:, :10], "b": pos[:, 5:15]})
    rows = {r["recipe"]: r for r in study_figures([unit], ["a", "b"], ["a", "b"], 0, 50)}
    assert set(rows) == {"a", "b", COMBINED}
    val_a = aurocs(neg[:, :10], pos[:, :10])
    assert rows["a"]["kendall_tau_b"] == pytest.approx(figures(val_a, expected, 0)["kendall_tau_b"])
    low, high = rows["a"]["regret_ci"]
    assert low <= high


def test_point_names_are_safe_file_names():
    assert point_name({}) == "preset"
    assert point_name({"stages": [2, 3], "image_size": 320}) == "stages=2-3+image_size=320"
    assert point_name({"name": "no crop / 224"}) == "no_crop___224"


def test_a_small_study_end_to_end(synthetic_root, tmp_path):
    """Two points, two further recipes: each point fitted once, scored on the default mix, on
    each recipe and on the test set, recorded in the study place only; asking for another
    recipe later runs the points again."""
    suite = Suite(name="t", dataset="synthetic", methods=["patchcore"], categories=["blobs"],
                  preset="tiny", backbone="random")
    points = [{}, {"patch_size": 1}]
    study = agreement(suite, points, tmp_path, recipes=["cutpaste", "pit"],
                      data_root=synthetic_root, bootstrap=20)
    store = ResultsStore(tmp_path)
    assert not store.has_records()  # never where the main tables read
    records = store.agreement().records()
    assert sorted(r.variant for r in records) == ["patch_size=1", "preset"]
    for record in records:
        assert 0 <= record.val_auroc <= 1 and 0 <= record.auroc <= 1 and record.scores
        assert set(record.info["val_aurocs"]) == {"cutpaste", "pit"}
    recipes = {f["recipe"] for f in study.figures}
    assert recipes == {study.figures[0]["default_mix"], "cutpaste", "pit", COMBINED}
    written = json.loads(study.json.read_text())
    assert written["points"] == {"preset": {}, "patch_size=1": {"patch_size": 1}}
    assert [row["point"] for row in written["table"]] == ["preset", "patch_size=1"]
    assert all(f["default_regret"] == f["default_regret"] for f in study.figures)  # preset found
    again = agreement(suite, points, tmp_path, recipes=["cutpaste", "pit", "nsa"],
                      data_root=synthetic_root, bootstrap=0)
    assert "nsa" in {f["recipe"] for f in again.figures}
    assert all("nsa" in r.info["val_aurocs"] for r in store.agreement().records())


def test_feature_maps_are_cached_per_stage(synthetic_root, tmp_path, monkeypatch):
    """A grid over stages extracts each image's maps once per stage: after stages (1, 2), the
    point with stages (2, 3) extracts stage 3 only, and the validation images are read from the
    cache like the training images."""
    extracted: list[tuple[tuple[int, ...], int]] = []
    real = maps_module.extract_maps

    def counting(engine, images, samples, recipe, *args, **kwargs):
        extracted.append((engine.module.stages, len(samples)))
        return real(engine, images, samples, recipe, *args, **kwargs)

    monkeypatch.setattr(maps_module, "extract_maps", counting)
    suite = Suite(name="t", dataset="synthetic", methods=["patchcore"], categories=["blobs"],
                  preset="tiny", backbone="random", validation="synthetic")
    (cell,) = plan(suite, data_root=synthetic_root)
    options = RunOptions(cache_dir=tmp_path, evaluate_test=False)
    run_cell(dataclasses.replace(cell, config=dataclasses.replace(cell.config, stages=(1, 2))),
             options)
    assert {stages for stages, _ in extracted} == {(1, 2)}
    extracted.clear()
    run_cell(dataclasses.replace(cell, config=dataclasses.replace(cell.config, stages=(2, 3))),
             options)
    assert {stages for stages, _ in extracted} == {(3,)}  # train and validation: stage 3 only
    extracted.clear()
    run_cell(dataclasses.replace(cell, config=dataclasses.replace(cell.config, stages=(1, 3))),
             options)
    assert extracted == []


def test_the_agreement_command(synthetic_root, tmp_path):
    """From the command line, with a grid file; mistakes are one line before any cell."""
    from click.testing import CliRunner

    from bench.cli import cli

    grid = tmp_path / "grid.toml"
    grid.write_text("[[points]]\n[[points]]\nn_test_transforms = 1\n")
    args = ["agreement", "--suite", "smoke", "--methods", "knn", "--categories", "stripes",
            "--preset", "tiny", "--backbone", "random", "--data-root", str(synthetic_root),
            "--results-dir", str(tmp_path / "r"), "--no-progress", "--bootstrap", "10"]
    result = CliRunner().invoke(cli, [*args, "--grid-file", str(grid), "--recipes", "pit,crack",
                                      "--seeds", "0,1"])
    assert result.exit_code == 0, result.output
    assert "tau-b" in result.output and "combined (Borda)" in result.output
    # Two seeds: one seed's test against the other's, the most a validation could reach.
    (study,) = (tmp_path / "r").glob("agreement/studies/*.json")
    (repeat,) = [f for f in json.loads(study.read_text())["figures"]
                 if f["recipe"] == ANOTHER_SEED]
    assert repeat["pairs"] == 2 and "test of another seed" in result.output
    for extra, words in ((["--grid-file", str(grid), "--grid", "n_test_transforms=1,2"], "not both"),
                         (["--grid-file", str(grid), "--recipes", "pitt"], "unknown defect recipe"),
                         (["--grid", "n_test_transformz=1,2"], "n_test_transformz")):
        refused = CliRunner().invoke(cli, [*args, *extra])
        assert refused.exit_code == 2 and words in refused.output, refused.output
