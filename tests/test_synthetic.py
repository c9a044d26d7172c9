"""The synthetic dataset: deterministic, MVTec-style, defects with masks of modest size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import ensure_dataset, load_split
from bench.data.synthetic import make_synthetic
from bench.errors import BenchError
from bench.run.suites import load_suite, plan

SMALL = {"n_train": 4, "n_test_good": 3, "n_test_defect": 2, "size": 64}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_root(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


def test_same_seed_same_bytes(tmp_path):
    a = files(make_synthetic(tmp_path / "a", **SMALL))
    b = files(make_synthetic(tmp_path / "b", **SMALL))
    assert a and a == b
    c = files(make_synthetic(tmp_path / "c", seed=1, **SMALL))
    assert a.keys() == c.keys() and a != c


def test_category_independent_of_the_others(tmp_path):
    both = files(make_synthetic(tmp_path / "both", **SMALL))
    alone = files(make_synthetic(tmp_path / "alone", categories=("blobs",), **SMALL))
    assert alone == {k: v for k, v in both.items() if k.startswith("blobs")}


@pytest.mark.parametrize("category", ["stripes", "blobs"])
def test_default_layout_loads(default_root, category):
    split = load_split("synthetic", category, default_root)
    assert len(split.train) == 40
    assert sorted({s.defect for s in split.test}) == ["good", "scratch", "spot"]
    assert sum(s.label == 0 for s in split.test) == 16
    defective = [s for s in split.test if s.label == 1]
    assert len(defective) == 32
    for sample in defective:
        assert sample.mask_path is not None
        area = (np.asarray(Image.open(sample.mask_path)) > 0).mean()
        assert 0.01 < area < 0.06
    image = Image.open(split.train[0].path)
    assert (image.mode, image.size) == ("RGB", (128, 128))


def test_leaves_no_temporary_folder(default_root):
    assert sorted(p.name for p in default_root.iterdir()) == ["blobs", "stripes"]


def test_existing_category_is_kept(tmp_path):
    root = make_synthetic(tmp_path, categories=("stripes",), **SMALL)
    before = files(root)
    make_synthetic(tmp_path, categories=("stripes",), n_train=9, size=32)
    assert files(root) == before


def test_unknown_category(tmp_path):
    with pytest.raises(BenchError, match="stripes"):
        make_synthetic(tmp_path, categories=("plaid",))


def test_ensure_dataset_generates(tmp_path):
    ensure_dataset("synthetic", tmp_path / "syn")
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == ["blobs", "stripes"]


def test_smudge_wipes_the_texture_and_keeps_the_intensity(tmp_path):
    root = make_synthetic(tmp_path, categories=("stripes",), defects=("smudge",), **SMALL)
    split = load_split("synthetic", "stripes", root)
    assert sorted({s.defect for s in split.test}) == ["good", "smudge"]
    for sample in (s for s in split.test if s.label == 1):
        gray = np.asarray(Image.open(sample.path).convert("L"), dtype=float)
        mask = np.asarray(Image.open(sample.mask_path)) > 0
        # Inside: flat up to the pixel noise; the stripes outside swing far more, about the same mean.
        assert gray[mask].std() < 0.3 * gray[~mask].std()
        assert abs(gray[mask].mean() - gray[~mask].mean()) < 0.2 * gray[~mask].std() + 10
    with pytest.raises(BenchError, match="no synthetic defect 'dent'"):
        make_synthetic(tmp_path / "x", defects=("dent",), **SMALL)


def _mask_areas(root: Path) -> list[float]:
    return [(np.asarray(Image.open(p)) > 0).mean() for p in sorted(root.rglob("*_mask.png"))]


def test_defect_scale_widens_the_defects_only(tmp_path):
    small = make_synthetic(tmp_path / "x1", categories=("blobs",), **SMALL)
    large = make_synthetic(tmp_path / "x3", categories=("blobs",), defect_scale=3, **SMALL)
    # Same random draws, so each defect grows in place: spots by about 9x, scratches about 3x.
    for a, b in zip(_mask_areas(small), _mask_areas(large), strict=True):
        assert b > 2.5 * a
    before, after = files(small), files(large)
    train = {k for k in before if "/train/" in k}
    assert train and all(before[k] == after[k] for k in train)
    with pytest.raises(BenchError, match="defect_scale must be positive"):
        make_synthetic(tmp_path / "x0", defect_scale=0, **SMALL)


def test_suite_dataset_options_make_the_data(tmp_path):
    suite = tmp_path / "mine.toml"
    suite.write_text('dataset = "synthetic"\nmethods = ["knn"]\ncategories = ["blobs"]\n'
                     '[dataset_options]\nn_train = 3\nn_test_defect = 2\nsize = 32\n'
                     'defects = ["spot"]\n')
    plan(load_suite(str(suite)), data_root=tmp_path / "data")
    split = load_split("synthetic", "blobs", tmp_path / "data")
    assert len(split.train) == 3 and sorted(s.defect for s in split.test if s.label) == ["spot"] * 2
    suite.write_text(suite.read_text().replace("size = 32", "colour = 1"))
    with pytest.raises(BenchError, match="unknown synthetic dataset option.*colour"):
        plan(load_suite(str(suite)), data_root=tmp_path / "other")
    with pytest.raises(BenchError, match="takes no dataset_options"):
        ensure_dataset("mtd", tmp_path / "mtd", options={"size": 32})
