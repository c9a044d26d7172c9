"""Export: a saved model as one ONNX or OpenVINO graph from image to score. Its scores match the
.pt model's (each image under the same transforms), predict runs it in a fresh process that
cannot import torch, the runtime's decoding is the pipeline's pixel for pixel, and a method
without a graph says so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.data.base import load_image
from bench.data.imagecache import decode_resized
from bench.deploy.export.runtime import load_exported, resize_uint8
from bench.deploy.models import load_model, predict
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
RUN = ["--suite", "smoke", "--categories", "blobs", "--preset", "tiny", "--backbone", "random",
       "--validation", "synthetic", "--save-models", "--no-progress"]
# A fresh interpreter in which importing torch fails: whatever predict needs must do without.
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from bench.cli import main
sys.argv = ["bench.py", *sys.argv[1:]]
try:
    main()
finally:
    assert "torch" not in sys.modules
"""


@pytest.fixture(scope="module")
def saved(synthetic_root, tmp_path_factory):
    store = tmp_path_factory.mktemp("export-store")
    result = CliRunner().invoke(cli, ["run", *RUN, "--methods", "differnet,ocsvm,knn,patchcore",
                                      "--data-root", str(synthetic_root),
                                      "--results-dir", str(store)])
    assert result.exit_code == 0, result.output
    return {r.method: Path(r.info["model_file"]) for r in ResultsStore(store).records()}


def export(model: Path, fmt: str, out: Path):
    return CliRunner().invoke(cli, ["export", "--model", str(model), "--format", fmt,
                                    "--out", str(out)])


def test_a_new_image_resized_as_the_pipeline_does(synthetic_root, tmp_path):
    """The runtime's NumPy resize is torchvision's uint8 kernel, pixel for pixel, up and down,
    to square sizes from other aspect ratios."""
    rng = np.random.default_rng(0)
    from PIL import Image

    for i, (h, w) in enumerate([(97, 131), (300, 200), (64, 64), (17, 250)]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        image = np.asarray(load_image(path)).transpose(2, 0, 1)
        for size in (32, 64, 100, 448):
            assert (resize_uint8(image, size) == decode_resized(path, size)).all(), (h, w, size)


@pytest.mark.parametrize("method", ["differnet", "ocsvm", "knn"])
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_scores_match_the_saved_model(saved, synthetic_root, tmp_path, method, fmt):
    result = export(saved[method], fmt, tmp_path / "model")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    model = load_model(saved[method])
    assert meta["threshold"] == model.threshold is not None
    assert meta["image_size"] == model.detector.config.image_size
    # Images the run scored and new ones (another category), so both kinds of transforms.
    paths = [*sorted((synthetic_root / "blobs" / "test").rglob("*.png"))[::6],
             *sorted((synthetic_root / "stripes" / "test").rglob("*.png"))[::12]]
    expected = predict(model, paths, show_progress=False)["score"].to_numpy()
    exported = load_exported(tmp_path / "model")
    got = exported.score(paths)
    # Relative to the scores' scale: OCSVM's decision values cross zero.
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-4 * scale, (got, expected)
    assert not np.allclose(expected, expected[0])  # the images do get different scores


def test_predict_runs_an_exported_model_without_torch(saved, synthetic_root, tmp_path):
    assert export(saved["differnet"], "onnx", tmp_path / "model").exit_code == 0
    images = tmp_path / "images"
    images.mkdir()
    good = sorted((synthetic_root / "blobs" / "test" / "good").iterdir())[:3]
    for path in good:
        (images / path.name).write_bytes(path.read_bytes())
    (images / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "scores.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", NO_TORCH, "predict", "--model",
                           str(tmp_path / "model"), str(images), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, env=env, cwd=REPO)
    # Exit 1: the broken image is named, the others scored (as with a .pt model).
    assert done.returncode == 1, done.stderr
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    table = pd.read_csv(out, keep_default_na=False)
    scored = table[table["error"] == ""]
    expected = predict(load_model(saved["differnet"]), [images / p.name for p in good],
                       show_progress=False)
    assert np.allclose(scored["score"].astype(float), expected["score"], rtol=1e-4)
    assert set(scored["anomalous"]) <= {True, False, "True", "False"}


def test_methods_without_a_graph_say_so_in_one_line(saved, tmp_path):
    result = export(saved["patchcore"], "onnx", tmp_path / "model")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "cannot be exported" in result.output


def test_an_exported_model_has_no_maps(saved, synthetic_root, tmp_path):
    assert export(saved["knn"], "onnx", tmp_path / "model").exit_code == 0
    image = next((synthetic_root / "blobs" / "test" / "good").iterdir())
    result = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "model"), str(image),
                                      "--maps", str(tmp_path / "maps")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "drop --maps" in result.output


def test_a_folder_that_is_no_export_is_one_line(synthetic_root, tmp_path):
    image = next((synthetic_root / "blobs" / "test" / "good").iterdir())
    result = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path), str(image)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "model.json" in result.output


def test_export_without_onnx_is_one_line(saved, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    result = export(saved["knn"], "onnx", tmp_path / "model")
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "pip install" in result.output and not (tmp_path / "model").exists()
