"""Reading MVTec-style folders: layout errors and broken images say what to fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import load_image, load_mask, load_split
from bench.data.folder import list_categories, load_folder_split
from bench.errors import BenchError


def png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)
    return path


@pytest.fixture
def category(tmp_path) -> Path:
    cat = tmp_path / "widget"
    png(cat / "train/good/000.png")
    png(cat / "test/good/000.png")
    png(cat / "test/dent/000.png")
    png(cat / "ground_truth/dent/000_mask.png", 255)
    return cat


def test_folder_loads_with_masks(category):
    split = load_split("folder", "widget", category.parent)
    assert [s.name for s in split.train] == ["good/000.png"]
    assert [(s.name, s.label) for s in split.test] == [("dent/000.png", 1), ("good/000.png", 0)]
    dent = split.test[0]
    assert dent.mask_path == category / "ground_truth/dent/000_mask.png"
    assert load_mask(dent, (4, 4)).all()
    assert list_categories(category.parent) == ["widget"]


def test_missing_train_good_is_explained(category):
    (category / "train/good/000.png").unlink()
    (category / "train/good").rmdir()
    with pytest.raises(BenchError, match="train/good"):
        load_folder_split(category.parent, "widget")
    assert list_categories(category.parent) == []


def test_empty_train_good_is_explained(category):
    (category / "train/good/000.png").unlink()
    with pytest.raises(BenchError, match="train/good"):
        load_folder_split(category.parent, "widget")


def test_corrupt_image_is_named(category):
    bad = category / "test/dent/001.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(BenchError, match="001.png"):
        load_image(bad)
    with pytest.raises(BenchError, match="does not exist"):
        load_image(category / "test/dent/404.png")


def test_grayscale_becomes_rgb(category):
    assert load_image(category / "train/good/000.png").mode == "RGB"
