"""Saved models: ``predict`` gives a run's test images exactly their recorded scores, scores
new images independently of their companions, names unreadable images and goes on, and its
threshold comes from held-out training normals only. The same for the image baselines."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.deploy.models import choose_threshold, load_model, predict
from bench.store.results import ResultsStore

RUN = ["--suite", "smoke", "--methods", "differnet", "--categories", "blobs", "--preset", "tiny",
       "--backbone", "random", "--validation", "synthetic", "--save-models", "--no-progress"]


def saved_run(root: Path, store: Path):
    result = CliRunner().invoke(cli, ["run", *RUN, "--data-root", str(root),
                                      "--results-dir", str(store)])
    assert result.exit_code == 0, result.output
    (record,) = ResultsStore(store).records()
    return record, Path(record.info["model_file"])


@pytest.fixture(scope="module")
def saved(synthetic_root, tmp_path_factory):
    return saved_run(synthetic_root, tmp_path_factory.mktemp("saved"))


def test_predict_reproduces_the_recorded_scores(saved, synthetic_root):
    record, model_file = saved
    chosen = [7, 2, 11, 0, 15, 4]  # a subset, in another order
    paths = [synthetic_root / "blobs" / "test" / record.test_files[i] for i in chosen]
    table = predict(load_model(model_file), paths, show_progress=False)
    assert table["score"].tolist() == [record.scores[i] for i in chosen]


def test_a_new_image_scores_the_same_whatever_comes_with_it(saved, synthetic_root, tmp_path):
    _, model_file = saved
    model = load_model(model_file)
    new = tmp_path / "new.png"
    shutil.copy(synthetic_root / "stripes" / "test" / "good" / "000.png", new)
    alone = predict(model, [new], show_progress=False)["score"][0]
    others = sorted((synthetic_root / "stripes" / "test" / "scratch").iterdir())[:3]
    together = predict(model, [*others, new], show_progress=False)["score"].iloc[-1]
    assert alone == together


def test_threshold_comes_from_the_held_out_normals_only(saved, synthetic_root, tmp_path):
    record, model_file = saved
    model = load_model(model_file)
    assert model.meta["threshold_from"] == "validation normals"
    assert model.threshold == choose_threshold(record.val_scores, record.val_labels, 0.05)
    # Other test labels (a defect-free test image moved among the defects): same threshold.
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "blobs", root / "blobs")
    good = sorted((root / "blobs" / "test" / "good").iterdir())[0]
    defect = next(p for p in (root / "blobs" / "test").iterdir() if p.name != "good")
    shutil.move(good, defect / "moved.png")
    _, other_file = saved_run(root, tmp_path / "store")
    assert load_model(other_file).threshold == model.threshold


def test_predict_command_names_an_unreadable_image_and_scores_the_rest(saved, synthetic_root,
                                                                      tmp_path):
    _, model_file = saved
    folder = tmp_path / "images"
    shutil.copytree(synthetic_root / "blobs" / "test" / "good", folder)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(cli, ["predict", "--model", str(model_file), str(folder),
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 1 and "broken.png" in result.output
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["path", "score", "anomalous", "error"]
    scored = table[table["error"] == ""]
    assert len(scored) == len(table) - 1 and np.isfinite(scored["score"].astype(float)).all()
    assert set(scored["anomalous"]) <= {"True", "False"}


@pytest.mark.parametrize("method", ["ganomaly", "dsebm", "geotrans", "adgan"])
def test_image_baselines_are_saved_and_predict_their_recorded_scores(method, synthetic_root,
                                                                     tmp_path):
    result = CliRunner().invoke(cli, [
        "run", "--suite", "smoke", "--methods", method, "--categories", "stripes", "--preset",
        "tiny", "--set", "epochs=2", "--save-models", "--no-progress",
        "--data-root", str(synthetic_root), "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (record,) = ResultsStore(tmp_path).records()
    model = load_model(Path(record.info["model_file"]))
    chosen = [5, 0, 9]  # a subset, in another order: the other test images are not there
    paths = [synthetic_root / "stripes" / "test" / record.test_files[i] for i in chosen]
    scores = predict(model, paths, show_progress=False)["score"].to_numpy()
    np.testing.assert_allclose(scores, [record.scores[i] for i in chosen], rtol=1e-5)
    assert model.threshold is None  # no --validation split, so no threshold


def test_ganomaly_with_batch_statistics_is_not_saved(synthetic_root, tmp_path, caplog):
    result = CliRunner().invoke(cli, [
        "run", "--suite", "smoke", "--methods", "ganomaly", "--categories", "stripes",
        "--preset", "tiny", "--set", "epochs=1", "--set", "score_batch_stats=true",
        "--save-models", "--no-progress", "--data-root", str(synthetic_root),
        "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (record,) = ResultsStore(tmp_path).records()
    assert "model_file" not in record.info and not (tmp_path / "models").exists()
    assert "cannot be saved" in caplog.text
